// The C++ suite: the Linux SDK's API (agora_sdk_cpp) against a real beckon-server.
//
// Every IAgoraAPI method and every ICallBack callback of the Linux seed, every bad input of
// SPEC §2 with its code (through its failure callback and onError), several instances in one
// process, one instance from many threads, calls from inside callbacks, destroy while
// callbacks are in flight, and an application that overrides only two callbacks. The
// recorder (support.h) also checks on every callback that strings are NUL-terminated at
// ptr[size] and that an instance's callbacks run on one thread, one at a time.
//
// Run by `cargo xtask test` (xtask/src/cpp.rs), which starts the server and sets:
//   BECKON_URL                 tcp URL of the server
//   BECKON_TEST_WS_URL         its WebSocket URL
//   BECKON_TEST_PRIV_APP       an app that requires tokens
//   BECKON_TEST_TOKEN_<name>   tokens of that app: gateway and admin (server privilege),
//                              caller, member, outsider (none)
// `suite <filter>` runs the tests whose names contain <filter>.

#include "support.h"

using namespace agora_sdk_cpp;

typedef t::Recorder<ICallBack> Rec;

#define S(str) (str).data(), (str).size()
#define L(lit) lit, sizeof(lit) - 1

static const std::string APP = "cpp-suite";
static const std::string NO_TOKEN = "_no_need_token";

static std::string after(const std::string &line, const std::string &prefix) {
    CHECK(line.compare(0, prefix.size(), prefix) == 0);
    return line.substr(prefix.size());
}

static bool starts(const std::string &s, const std::string &prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

static bool contains(const std::string &hay, const std::string &needle) {
    return hay.find(needle) != std::string::npos;
}

// One instance with a recorder; destroyed (before its recorder) when it goes out of scope.
struct Client {
    std::string account;
    Rec rec;
    IAgoraAPI *api;

    explicit Client(const std::string &acc) : account(acc), api(createAgoraSDKInstanceCPP()) {
        CHECK(api != nullptr);
        api->callbackSet(&rec);
    }
    ~Client() { api->destroy(); }

    // Logs in to `app` with `token` and waits for the success; returns the uid.
    uint32_t login(const std::string &app = APP, const std::string &token = NO_TOKEN) {
        api->login(S(app), S(account), S(token), 0, nullptr, 0);
        std::string l = rec.wait("onLoginSuccess|");
        return static_cast<uint32_t>(std::strtoul(after(l, "onLoginSuccess|").c_str(), 0, 10));
    }

    // Logs in to the app that requires tokens, with the driver's token for this account.
    uint32_t login_priv() {
        return login(t::env("BECKON_TEST_PRIV_APP"),
                     t::env(("BECKON_TEST_TOKEN_" + account).c_str()));
    }

    void join(const std::string &channel) {
        api->channelJoin(S(channel));
        rec.wait("onChannelJoined|" + channel);
    }
};

// ---- lifecycle ----------------------------------------------------------------------------------

static void lifecycle_and_status() {
    Client a("life-a");
    CHECK_EQ(a.api->getStatus(), static_cast<int>(LOGIN_STATE_NOT_LOGIN));
    CHECK(!a.api->isOnline());
    CHECK_EQ(a.api->getSdkVersion(), 1000100000);
    CHECK(a.api->callbackGet() == &a.rec);

    a.api->login2(S(APP), S(a.account), S(NO_TOKEN), 0, "", 0, 10, 2);
    int status = a.api->getStatus();
    CHECK(status == LOGIN_STATE_LOGINING || status == LOGIN_STATE_LOGINED);
    std::string ok = a.rec.wait("onLoginSuccess|");
    uint32_t uid = static_cast<uint32_t>(std::strtoul(after(ok, "onLoginSuccess|").c_str(), 0, 10));
    CHECK(uid != 0);
    CHECK(ok.substr(ok.size() - 2) == "|0");
    CHECK_EQ(a.api->getStatus(), static_cast<int>(LOGIN_STATE_LOGINED));
    CHECK(a.api->isOnline());

    // A login while logged in is ignored, and the log says so.
    a.api->login(S(APP), S(a.account), S(NO_TOKEN), 0, nullptr, 0);
    a.rec.wait("onLog|login ignored");
    a.rec.none("onLoginSuccess|", 200);

    a.api->logout();
    a.rec.wait("onLogout|" + std::to_string(LOGOUT_E_USER));
    CHECK_EQ(a.api->getStatus(), 0);
    a.api->logout();
    a.rec.wait("onError|logout|108|");

    // The uid is the account's, login after login.
    CHECK_EQ(a.login(), uid);
}

static void logout_during_login_cancels_it() {
    Client a("cancel-a");
    a.api->login(S(APP), S(a.account), S(NO_TOKEN), 0, nullptr, 0);
    a.api->logout();
    std::string l = a.rec.wait("onLogin");
    // The login either finished first (then the logout ends it) or was cancelled.
    if (l == "onLoginFailed|203") return;
    CHECK(starts(l, "onLoginSuccess|"));
    a.rec.wait("onLogout|101");
}

static void a_second_login_of_an_account_kicks_the_first() {
    Client a("kick-x"), b("kick-x");
    a.login();
    b.login();
    a.rec.wait("onLogout|" + std::to_string(LOGOUT_E_KICKED));
    CHECK_EQ(b.api->getStatus(), 2);
}

static void a_wrong_token_fails_the_login() {
    Client c("caller");
    std::string app = t::env("BECKON_TEST_PRIV_APP");
    c.api->login(S(app), S(c.account), L("not-a-token"), 0, nullptr, 0);
    c.rec.wait("onLoginFailed|" + std::to_string(LOGIN_E_TOKENWRONG));
    c.api->login(S(app), S(c.account), L("_no_need_token"), 0, nullptr, 0);
    c.rec.wait("onLoginFailed|");
    c.login_priv();
}

// ---- users and messages -------------------------------------------------------------------------

static void p2p_messages() {
    Client a("p2p-a"), b("p2p-b");
    a.login();
    b.login();

    a.api->messageInstantSend(S(b.account), 0, L("hello"), L("m1"));
    a.rec.wait("onMessageSendSuccess|m1");
    CHECK_EQ(b.rec.wait("onMessageInstantReceive|"), "onMessageInstantReceive|p2p-a|0|hello");

    // "" as msgID: the SDK makes one.
    a.api->messageInstantSend(S(b.account), 0, L("two"), "", 0);
    CHECK(after(a.rec.wait("onMessageSendSuccess|"), "onMessageSendSuccess|").size() > 0);
    b.rec.wait("onMessageInstantReceive|p2p-a|0|two");

    // Bytes travel intact: UTF-8, an embedded NUL; sizes count bytes.
    std::string body = "caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd";
    body.push_back('\0');
    body += "tail";
    a.api->messageInstantSend(S(b.account), 0, S(body), L("m3"));
    CHECK(after(b.rec.wait("onMessageInstantReceive|"), "onMessageInstantReceive|p2p-a|0|") ==
          body);

    // The largest body.
    std::string big(8192, 'x');
    a.api->messageInstantSend(S(b.account), 0, S(big), L("m4"));
    a.rec.wait("onMessageSendSuccess|m4");
    CHECK(after(b.rec.wait("onMessageInstantReceive|"), "onMessageInstantReceive|p2p-a|0|") ==
          big);

    a.api->queryUserStatus(S(b.account));
    CHECK_EQ(a.rec.wait("onQueryUserStatusResult|"), "onQueryUserStatusResult|p2p-b|1");
    a.api->queryUserStatus(L("p2p-nobody"));
    CHECK_EQ(a.rec.wait("onQueryUserStatusResult|"), "onQueryUserStatusResult|p2p-nobody|0");

    // To an offline account: stored, delivered at its next login. (As the Rust end-to-end
    // test does, wait until the server has b offline: onLogout comes a moment before that.)
    b.api->logout();
    b.rec.wait("onLogout|101");
    for (int i = 0;; i++) {
        a.api->queryUserStatus(S(b.account));
        if (a.rec.wait("onQueryUserStatusResult|p2p-b|") == "onQueryUserStatusResult|p2p-b|0") break;
        CHECK(i < 500);
        t::sleep_ms(10);
    }
    a.api->messageInstantSend(S(b.account), 0, L("while away"), L("m5"));
    a.rec.wait("onMessageSendSuccess|m5");
    b.login();
    b.rec.wait("onMessageInstantReceive|p2p-a|0|while away");
}

static void user_attributes() {
    Client a("attr-a"), b("attr-b");
    a.login();
    b.login();
    a.api->setAttr(L("color"), L("blue"));
    a.api->getAttr(L("color"));
    CHECK_EQ(a.rec.wait("onUserAttrResult|"), "onUserAttrResult|attr-a|color|blue");
    a.api->getAttrAll();
    CHECK(contains(a.rec.wait("onUserAttrAllResult|attr-a|"), "\"color\":\"blue\""));
    b.api->getUserAttr(L("attr-a"), L("color"));
    CHECK_EQ(b.rec.wait("onUserAttrResult|"), "onUserAttrResult|attr-a|color|blue");
    b.api->getUserAttrAll(L("attr-a"));
    CHECK(contains(b.rec.wait("onUserAttrAllResult|attr-a|"), "\"color\":\"blue\""));
    // An empty value deletes; a missing attribute reads "".
    a.api->setAttr(L("color"), "", 0);
    a.api->getAttr(L("color"));
    CHECK_EQ(a.rec.wait("onUserAttrResult|"), "onUserAttrResult|attr-a|color|");
    b.api->getUserAttr(L("attr-a"), L("color"));
    CHECK_EQ(b.rec.wait("onUserAttrResult|"), "onUserAttrResult|attr-a|color|");
}

static void invoke_calls_server_functions() {
    Client a("inv-a"), b("inv-b");
    a.login();
    b.login();
    a.api->invoke(L("io.agora.signal.user_query_user_status"), L("{\"account\":\"inv-b\"}"),
                  L("c1"));
    std::string r = a.rec.wait("onInvokeRet|c1|");
    CHECK(contains(r, "onInvokeRet|c1||"));
    CHECK(contains(r, "\"status\":1"));
    a.api->invoke(L("io.agora.signal.no_such_function"), L("{}"), L("c2"));
    CHECK(starts(a.rec.wait("onInvokeRet|c2|"), "onInvokeRet|c2|1004|"));
    a.rec.wait("onError|invoke|1004|");
}

// ---- channels -----------------------------------------------------------------------------------

static void channels() {
    Client a("chan-a"), b("chan-b");
    a.login();
    b.login();
    const std::string room = "chan-room";

    a.api->channelJoin(S(room));
    a.rec.wait("onChannelJoined|chan-room");
    CHECK_EQ(a.rec.wait("onChannelUserList|"), "onChannelUserList|1|chan-a:0");
    a.api->channelSetAttr(S(room), L("topic"), L("news"));
    CHECK_EQ(a.rec.wait("onChannelAttrUpdated|"), "onChannelAttrUpdated|chan-room|topic|news|update");

    // The joiner gets the members and the attributes; the others hear of it.
    b.api->channelJoin(S(room));
    b.rec.wait("onChannelJoined|chan-room");
    std::string list = b.rec.wait("onChannelUserList|2|");
    CHECK(contains(list, "chan-a:0") && contains(list, "chan-b:0"));
    CHECK_EQ(b.rec.wait("onChannelAttrUpdated|"), "onChannelAttrUpdated|chan-room|topic|news|update");
    CHECK_EQ(a.rec.wait("onChannelUserJoined|"), "onChannelUserJoined|chan-b|0");

    a.api->messageChannelSend(S(room), L("hi all"), L("cm1"));
    a.rec.wait("onMessageSendSuccess|cm1");
    CHECK_EQ(a.rec.wait("onMessageChannelReceive|"), "onMessageChannelReceive|chan-room|chan-a|0|hi all");
    CHECK_EQ(b.rec.wait("onMessageChannelReceive|"), "onMessageChannelReceive|chan-room|chan-a|0|hi all");

    // Queries need no membership.
    Client c("chan-c");
    c.login();
    c.api->channelQueryUserNum(S(room));
    CHECK_EQ(c.rec.wait("onChannelQueryUserNumResult|"), "onChannelQueryUserNumResult|chan-room|0|2");
    c.api->channelQueryUserIsIn(S(room), L("chan-b"));
    CHECK_EQ(c.rec.wait("onChannelQueryUserIsIn|"), "onChannelQueryUserIsIn|chan-room|chan-b|1");
    c.api->channelQueryUserIsIn(S(room), L("chan-c"));
    CHECK_EQ(c.rec.wait("onChannelQueryUserIsIn|"), "onChannelQueryUserIsIn|chan-room|chan-c|0");

    a.api->channelDelAttr(S(room), L("topic"));
    CHECK_EQ(b.rec.wait("onChannelAttrUpdated|"), "onChannelAttrUpdated|chan-room|topic||del");
    a.api->channelSetAttr(S(room), L("k"), L("v"));
    b.rec.wait("onChannelAttrUpdated|chan-room|k|v|update");
    a.api->channelClearAttr(S(room));
    CHECK_EQ(b.rec.wait("onChannelAttrUpdated|chan-room|||"), "onChannelAttrUpdated|chan-room|||clear");

    b.api->channelLeave(S(room));
    CHECK_EQ(b.rec.wait("onChannelLeaved|"), "onChannelLeaved|chan-room|602");
    CHECK_EQ(a.rec.wait("onChannelUserLeaved|"), "onChannelUserLeaved|chan-b|0");
    // Not a member any more.
    b.api->messageChannelSend(S(room), L("late"), L("cm2"));
    CHECK_EQ(b.rec.wait("onMessageSendError|"), "onMessageSendError|cm2|400");
    b.rec.wait("onError|messageChannelSend|400|");

    a.api->logout();
    CHECK_EQ(a.rec.wait("onChannelLeaved|"), "onChannelLeaved|chan-room|603");
    a.rec.wait("onLogout|101");
}

// ---- calls --------------------------------------------------------------------------------------

static void calls() {
    Client a("call-a"), b("call-b");
    a.login();
    b.login();

    // Invite, accept with the vendor samples' five arguments, DTMF both ways, end.
    a.api->channelInviteUser(L("call-1"), S(b.account));
    CHECK_EQ(b.rec.wait("onInviteReceived|"), "onInviteReceived|call-1|call-a|0|");
    CHECK_EQ(a.rec.wait("onInviteReceivedByPeer|"), "onInviteReceivedByPeer|call-1|call-b|0");
    b.api->channelInviteAccept(L("call-1"), S(a.account), 0);
    CHECK_EQ(a.rec.wait("onInviteAcceptedByPeer|"), "onInviteAcceptedByPeer|call-1|call-b|0|");
    a.api->channelInviteDTMF(L("call-1"), S(b.account), L("12#"));
    CHECK_EQ(b.rec.wait("onInviteMsg|"), "onInviteMsg|call-1|call-a|0|DTMF|12#|");
    b.api->messageDTMFSend(0, std::string("9"), std::string(""));
    CHECK_EQ(a.rec.wait("onInviteMsg|"), "onInviteMsg|call-1|call-b|0|DTMF|9|");
    b.api->messageDTMFSend(0, L("*7"), "", 0);
    CHECK_EQ(a.rec.wait("onInviteMsg|"), "onInviteMsg|call-1|call-b|0|DTMF|*7|");
    a.api->channelInviteEnd(L("call-1"), S(b.account), 0);
    CHECK_EQ(a.rec.wait("onInviteEndByMyself|"), "onInviteEndByMyself|call-1|call-b|0");
    CHECK(starts(b.rec.wait("onInviteEndByPeer|"), "onInviteEndByPeer|call-1|call-a|0"));

    // Refused, with extra both ways.
    a.api->channelInviteUser2(L("call-2"), S(b.account), L("{\"video\":1}"));
    CHECK_EQ(b.rec.wait("onInviteReceived|"), "onInviteReceived|call-2|call-a|0|{\"video\":1}");
    a.rec.wait("onInviteReceivedByPeer|call-2|");
    b.api->channelInviteRefuse(L("call-2"), S(a.account), 0, L("{\"busy\":1}"));
    CHECK_EQ(a.rec.wait("onInviteRefusedByPeer|"), "onInviteRefusedByPeer|call-2|call-b|0|{\"busy\":1}");

    // Accepted with extra, ended by the callee; refused with the five-argument form.
    a.api->channelInviteUser2(L("call-3"), S(b.account), "", 0);
    b.rec.wait("onInviteReceived|call-3|");
    b.api->channelInviteAccept(L("call-3"), S(a.account), 0, L("{\"ok\":true}"));
    CHECK_EQ(a.rec.wait("onInviteAcceptedByPeer|"), "onInviteAcceptedByPeer|call-3|call-b|0|{\"ok\":true}");
    b.api->channelInviteEnd(L("call-3"), S(a.account), 0);
    b.rec.wait("onInviteEndByMyself|call-3|call-a|0");
    a.rec.wait("onInviteEndByPeer|call-3|call-b|0|");
    a.api->channelInviteUser(L("call-3b"), S(b.account), 0);
    b.rec.wait("onInviteReceived|call-3b|");
    b.api->channelInviteRefuse(L("call-3b"), S(a.account), 0);
    a.rec.wait("onInviteRefusedByPeer|call-3b|call-b|0|");

    // Inviting again while the call is pending.
    a.api->channelInviteUser(L("call-4"), S(b.account));
    b.rec.wait("onInviteReceived|call-4|");
    a.api->channelInviteUser(L("call-4"), S(b.account));
    CHECK_EQ(a.rec.wait("onInviteFailed|"), "onInviteFailed|call-4|call-b|0|701|");
    a.rec.wait("onError|channelInviteUser2|701|");

    // An offline callee, when the caller asks for an online one.
    a.api->channelInviteUser2(L("call-5"), L("call-ghost"), L("{\"_require_peer_online\":1}"));
    CHECK_EQ(a.rec.wait("onInviteFailed|"),
             "onInviteFailed|call-5|call-ghost|0|703|{\"_require_peer_online\":1}");
}

static void phone_calls_through_a_gateway() {
    Client gw("gateway"), c("caller");
    gw.login_priv();
    c.login_priv();

    // No gateway yet.
    c.api->channelInvitePhone(L("ph-1"), L("+15550100"));
    CHECK(starts(c.rec.wait("onInviteFailed|"), "onInviteFailed|ph-1|+15550100|0|703"));

    gw.api->invoke(L("io.beckon.gateway_register"), L("{}"), L("r1"));
    CHECK_EQ(gw.rec.wait("onInvokeRet|"), "onInvokeRet|r1||{}");

    // channelInvitePhone3, std::string form.
    c.api->channelInvitePhone3(std::string("ph-2"), std::string("+15550100"),
                               std::string("+1999"), std::string("{\"x\":1}"));
    std::string inv = gw.rec.wait("onInviteReceived|ph-2|caller|0|");
    CHECK(contains(inv, "\"_phone\":1") && contains(inv, "\"srcNum\":\"+1999\"") &&
          contains(inv, "\"x\":1"));
    c.rec.wait("onInviteReceivedByPeer|ph-2|+15550100|0");
    gw.api->channelInviteAccept(L("ph-2"), L("caller"), 0, L("{\"destNum\":\"+15550100\"}"));
    CHECK_EQ(c.rec.wait("onInviteAcceptedByPeer|"),
             "onInviteAcceptedByPeer|ph-2|+15550100|0|{\"destNum\":\"+15550100\"}");
    c.api->channelInviteDTMF(L("ph-2"), L("+15550100"), L("5"));
    CHECK_EQ(gw.rec.wait("onInviteMsg|"), "onInviteMsg|ph-2|caller|0|DTMF|5|");
    c.api->channelInviteEnd(L("ph-2"), L("+15550100"), 0);
    c.rec.wait("onInviteEndByMyself|ph-2|+15550100|0");
    gw.rec.wait("onInviteEndByPeer|ph-2|caller|0|");

    // channelInvitePhone2, (pointer, size) form; the gateway refuses.
    c.api->channelInvitePhone2(L("ph-3"), L("+15550101"), L("+1888"));
    CHECK(contains(gw.rec.wait("onInviteReceived|ph-3|caller|0|"), "\"srcNum\":\"+1888\""));
    c.rec.wait("onInviteReceivedByPeer|ph-3|");
    gw.api->channelInviteRefuse(L("ph-3"), L("caller"), 0, L("{\"destNum\":\"+15550101\"}"));
    c.rec.wait("onInviteRefusedByPeer|ph-3|+15550101|0|");

    // channelInvitePhone, std::string form; the gateway hangs up.
    c.api->channelInvitePhone(std::string("ph-4"), std::string("+15550102"));
    gw.rec.wait("onInviteReceived|ph-4|caller|0|");
    c.rec.wait("onInviteReceivedByPeer|ph-4|");
    gw.api->channelInviteEnd(L("ph-4"), L("caller"), 0);
    c.rec.wait("onInviteEndByPeer|ph-4|+15550102|0|");
    gw.rec.wait("onInviteEndByMyself|ph-4|caller|0");

    // channelInvitePhone2, std::string form; channelInvitePhone3, (pointer, size) form.
    c.api->channelInvitePhone2(std::string("ph-5"), std::string("+15550103"), std::string(""));
    gw.rec.wait("onInviteReceived|ph-5|caller|0|");
    c.api->channelInvitePhone3(L("ph-6"), L("+15550104"), "", 0, L("{\"y\":2}"));
    CHECK(contains(gw.rec.wait("onInviteReceived|ph-6|caller|0|"), "\"y\":2"));
}

static void privileged_sends_and_special_channels() {
    Client admin("admin"), m("member"), o("outsider");
    admin.login_priv();
    m.login_priv();
    o.login_priv();
    m.join("news");

    admin.api->messageChannelSendForce(L("news"), L("bulletin"), L("f1"));
    admin.rec.wait("onMessageSendSuccess|f1");
    CHECK_EQ(m.rec.wait("onMessageChannelReceive|"), "onMessageChannelReceive|news|admin|0|bulletin");
    o.api->messageChannelSendForce(L("news"), L("spam"), L("f2"));
    CHECK_EQ(o.rec.wait("onMessageSendError|"), "onMessageSendError|f2|400");
    o.rec.wait("onError|messageChannelSendForce|400|");

    o.api->channelJoin(L("_agora_user_online"));
    CHECK_EQ(o.rec.wait("onChannelJoinFailed|"),
             "onChannelJoinFailed|_agora_user_online|" + std::to_string(JOINCHANNEL_E_FORBIDDEN));
    o.rec.wait("onError|channelJoin|301|");
    admin.join("_agora_user_online");
    o.api->logout();
    o.rec.wait("onLogout|101");
    std::string ev = admin.rec.wait("onMessageChannelReceive|_agora_user_online|_system|0|");
    CHECK(contains(ev, "\"outsider\""));
}

// ---- bad input (SPEC §2) ---------------------------------------------------------------------------

static void calls_before_login_fail_with_1003() {
    Client n("early-n");
    n.api->channelJoin(L("room"));
    CHECK_EQ(n.rec.wait("onChannelJoinFailed|"), "onChannelJoinFailed|room|1003");
    n.rec.wait("onError|channelJoin|1003|");
    n.api->messageInstantSend(L("x"), 0, L("m"), L("b1"));
    CHECK_EQ(n.rec.wait("onMessageSendError|"), "onMessageSendError|b1|1003");
    n.rec.wait("onError|messageInstantSend|1003|");
    n.api->messageChannelSend(L("room"), L("m"), L("b2"));
    CHECK_EQ(n.rec.wait("onMessageSendError|"), "onMessageSendError|b2|1003");
    n.rec.wait("onError|messageChannelSend|1003|");
    n.api->queryUserStatus(L("x"));
    n.rec.wait("onError|queryUserStatus|1003|");
    n.api->invoke(L("io.agora.signal.user_query_user_status"), L("{}"), L("i1"));
    CHECK_EQ(n.rec.wait("onInvokeRet|"), "onInvokeRet|i1|1003|");
    n.rec.wait("onError|invoke|1003|");
    n.api->channelInviteUser(L("c"), L("x"));
    CHECK_EQ(n.rec.wait("onInviteFailed|"), "onInviteFailed|c|x|0|1003|");
    n.rec.wait("onError|channelInviteUser2|1003|");
    n.api->channelQueryUserNum(L("room"));
    CHECK_EQ(n.rec.wait("onChannelQueryUserNumResult|"), "onChannelQueryUserNumResult|room|1003|0");
    n.api->setAttr(L("k"), L("v"));
    n.rec.wait("onError|setAttr|1003|");
}

static void bad_logins_are_refused_and_change_nothing() {
    Client n("badlogin");
    std::string too_long(129, 'a');
    n.api->login(S(APP), S(too_long), S(NO_TOKEN), 0, nullptr, 0);
    CHECK_EQ(n.rec.wait("onLoginFailed|"), "onLoginFailed|1005");
    n.rec.wait("onError|login|1005|");
    n.api->login(S(APP), L("has space"), S(NO_TOKEN), 0, nullptr, 0);
    CHECK_EQ(n.rec.wait("onLoginFailed|"), "onLoginFailed|1004");
    n.rec.wait("onError|login|1004|");
    n.api->login(S(APP), "", 0, S(NO_TOKEN), 0, nullptr, 0);
    CHECK_EQ(n.rec.wait("onLoginFailed|"), "onLoginFailed|1004");
    n.rec.wait("onError|login|1004|");
    n.api->login(S(APP), L("\xff\xfe"), S(NO_TOKEN), 0, nullptr, 0);
    CHECK_EQ(n.rec.wait("onLoginFailed|"), "onLoginFailed|1004");
    CHECK(contains(n.rec.wait("onError|login|1004|"), "account is not UTF-8"));
    n.api->login(S(APP), nullptr, 5, S(NO_TOKEN), 0, nullptr, 0);
    CHECK_EQ(n.rec.wait("onLoginFailed|"), "onLoginFailed|1004");
    CHECK(contains(n.rec.wait("onError|login|1004|"), "account is NULL"));
    n.api->login(S(APP), L("ok-account"), "", 0, 0, nullptr, 0);
    CHECK_EQ(n.rec.wait("onLoginFailed|"), "onLoginFailed|1004");
    CHECK_EQ(n.api->getStatus(), 0);
    // And a good login still works.
    n.login();
}

static void bad_arguments_after_login() {
    Client a("bad-a");
    a.login();

    std::string long_name(129, 'c');
    a.api->channelJoin(S(long_name));
    CHECK_EQ(a.rec.wait("onChannelJoinFailed|"), "onChannelJoinFailed|" + long_name + "|1005");
    a.rec.wait("onError|channelJoin|1005|");
    a.api->channelJoin("", 0);
    CHECK_EQ(a.rec.wait("onChannelJoinFailed|"), "onChannelJoinFailed||1004");
    a.rec.wait("onError|channelJoin|1004|");
    a.api->channelJoin(L("ro\xffom"));
    CHECK_EQ(a.rec.wait("onChannelJoinFailed|"), "onChannelJoinFailed|ro\xef\xbf\xbdom|1004");
    CHECK(contains(a.rec.wait("onError|channelJoin|1004|"), "channelID is not UTF-8"));

    a.api->setAttr(S(long_name), L("v"));
    a.rec.wait("onError|setAttr|1005|");
    std::string v1024(1024, 'v'), v1025(1025, 'v');
    a.api->setAttr(L("k"), S(v1024));
    a.api->setAttr(L("k"), S(v1025));
    a.rec.wait("onError|setAttr|1005|");
    a.api->getAttr(L("k"));
    CHECK(after(a.rec.wait("onUserAttrResult|"), "onUserAttrResult|bad-a|k|") == v1024);

    std::string m8193(8193, 'x');
    a.api->messageInstantSend(L("bad-b"), 0, S(m8193), L("b2"));
    CHECK_EQ(a.rec.wait("onMessageSendError|"), "onMessageSendError|b2|1005");
    a.rec.wait("onError|messageInstantSend|1005|");
    a.api->messageInstantSend("", 0, 0, L("m"), L("b3"));
    CHECK_EQ(a.rec.wait("onMessageSendError|"), "onMessageSendError|b3|1004");
    a.rec.wait("onError|messageInstantSend|1004|");
    a.api->messageInstantSend(L("bad-b"), 0, L("\xc3"), "", 0);
    std::string refused = a.rec.wait("onMessageSendError|");
    CHECK(refused.size() > 25 && refused.substr(refused.size() - 5) == "|1004");
    CHECK(contains(a.rec.wait("onError|messageInstantSend|1004|"), "msg is not UTF-8"));
    a.api->queryUserStatus(nullptr, 3);
    CHECK(contains(a.rec.wait("onError|queryUserStatus|1004|"), "account is NULL"));

    a.api->invoke(L("io.agora.signal.user_get_attr"), L("\xff"), L("i2"));
    CHECK_EQ(a.rec.wait("onInvokeRet|"), "onInvokeRet|i2|1004|");
    a.rec.wait("onError|invoke|1004|req is not UTF-8");
    a.api->channelQueryUserNum(L("\xff"));
    CHECK_EQ(a.rec.wait("onChannelQueryUserNumResult|"),
             "onChannelQueryUserNumResult|\xef\xbf\xbd|1004|0");

    a.api->channelInviteUser2(L("c"), L("bad-b"), L("not json"));
    CHECK_EQ(a.rec.wait("onInviteFailed|"), "onInviteFailed|c|bad-b|0|1004|not json");
    a.rec.wait("onError|channelInviteUser2|1004|");
    std::string big_extra = "{\"p\":\"" + std::string(8193 - 8, 'x') + "\"}";
    CHECK_EQ(big_extra.size(), static_cast<size_t>(8193));
    a.api->channelInviteUser2(L("c"), L("bad-b"), S(big_extra));
    CHECK(starts(a.rec.wait("onInviteFailed|"), "onInviteFailed|c|bad-b|0|1005"));
    a.rec.wait("onError|channelInviteUser2|1005|");
    a.api->channelInviteUser2(L("c\xff"), L("bad-b"), L("{}"));
    CHECK_EQ(a.rec.wait("onInviteFailed|"), "onInviteFailed|c\xef\xbf\xbd|bad-b|0|1004|{}");
    a.rec.wait("onError|channelInviteUser2|1004|");
    a.api->channelInviteDTMF(L("c"), L("bad-b"), L("12a"));
    a.rec.wait("onError|channelInviteDTMF|1004|");

    const std::string room = "bad-room";
    a.join(room);
    std::string v8097(8097, 'v');
    a.api->channelSetAttr(S(room), L("k"), S(v8097));
    a.rec.wait("onError|channelSetAttr|1005|");
    a.api->channelSetAttr(S(room), L("_member_num"), L("5"));
    a.rec.wait("onError|channelSetAttr|1004|");
    a.api->messageChannelSend(S(room), S(m8193), L("b4"));
    CHECK_EQ(a.rec.wait("onMessageSendError|"), "onMessageSendError|b4|1005");
    a.rec.wait("onError|messageChannelSend|1005|");

    // Nothing changed and the session is fine.
    CHECK_EQ(a.api->getStatus(), 2);
    a.api->messageChannelSend(S(room), L("still here"), L("b5"));
    a.rec.wait("onMessageSendSuccess|b5");
}

static void rate_limits() {
    Client a("rate-a");
    a.login();
    const std::string room = "rate-room";
    a.join(room);

    // 60 channel messages per user per second.
    const int N = 90;
    for (int i = 0; i < N; i++) {
        std::string id = "r" + std::to_string(i);
        a.api->messageChannelSend(S(room), L("flood"), S(id));
    }
    int ok = 0, limited = 0;
    for (int i = 0; i < N; i++) {
        std::string l = a.rec.wait("onMessageSend");
        if (starts(l, "onMessageSendSuccess|")) ok++;
        if (l.size() > 4 && l.substr(l.size() - 4) == "|402") limited++;
    }
    CHECK_EQ(ok + limited, N);
    CHECK(limited > 0 && ok >= 1);
    a.rec.wait("onError|messageChannelSend|402|");

    // The channel's own limit.
    a.api->channelSetAttr(S(room), L("_sendmsg_limit"), L("3"));
    a.rec.wait("onChannelAttrUpdated|rate-room|_sendmsg_limit|3|update");
    t::sleep_ms(1100);
    a.rec.clear();
    for (int i = 0; i < 10; i++) {
        std::string id = "s" + std::to_string(i);
        a.api->messageChannelSend(S(room), L("burst"), S(id));
    }
    a.rec.wait("onMessageSendError|");
    a.rec.wait("onError|messageChannelSend|402|");

    // Attribute updates per channel.
    a.api->channelSetAttr(S(room), L("_setattr_limit"), L("2"));
    a.rec.wait("onChannelAttrUpdated|rate-room|_setattr_limit|2|update");
    t::sleep_ms(1100);
    for (int i = 0; i < 6; i++) {
        std::string v = std::to_string(i);
        a.api->channelSetAttr(S(room), L("n"), S(v));
    }
    a.rec.wait("onError|channelSetAttr|1001|");
    CHECK_EQ(a.api->getStatus(), 2);
}

// ---- connections and servers ----------------------------------------------------------------------

static void reconnects_after_a_cut() {
    t::Proxy proxy(t::url_port(t::env("BECKON_URL")));
    Client a("rc-a"), b("rc-b");
    std::string url = "tcp://127.0.0.1:" + std::to_string(proxy.port());
    CHECK_EQ(beckon_sig_set_server_url(beckon_sig_of(a.api), S(url)), 0);
    a.login();
    b.login();
    proxy.cut();
    CHECK_EQ(a.rec.wait("onReconnecting|"), "onReconnecting|1");
    CHECK_EQ(a.rec.wait("onReconnected|"), "onReconnected|0");
    CHECK_EQ(a.api->getStatus(), 2);
    b.api->messageInstantSend(S(a.account), 0, L("after the cut"), L("x1"));
    a.rec.wait("onMessageInstantReceive|rc-b|0|after the cut");
}

static void server_urls_and_alternates() {
    CHECK_EQ(beckon_set_server_url(L("http://127.0.0.1:80")), 1004);
    Client a("url-a");
    CHECK_EQ(beckon_sig_set_server_url(beckon_sig_of(a.api), L("tcp://nowhere")), 1004);
    CHECK_EQ(beckon_sig_set_server_url(nullptr, L("tcp://127.0.0.1:1")), 1004);
    // A refused first URL, then the WebSocket listener.
    std::string alternates = "tcp://127.0.0.1:1, " + t::env("BECKON_TEST_WS_URL");
    CHECK_EQ(beckon_sig_set_server_url(beckon_sig_of(a.api), S(alternates)), 0);
    a.login();

    // The process's URL, here a dead one: the login fails with LOGIN_E_NET.
    Client d("url-d");
    CHECK_EQ(beckon_set_server_url(L("tcp://127.0.0.1:1")), 0);
    d.api->login2(S(APP), S(d.account), S(NO_TOKEN), 0, nullptr, 0, 2, 1);
    std::string failed = d.rec.wait("onLoginFailed|");
    CHECK_EQ(beckon_set_server_url(nullptr, 0), 0);
    CHECK_EQ(failed, "onLoginFailed|" + std::to_string(LOGIN_E_NET));
    // Back to BECKON_URL.
    d.login();
}

// ---- instances, threads and lifetimes -------------------------------------------------------------

static void instances_are_independent() {
    Client a("ind-a"), b("ind-b");
    a.login();
    b.login();
    CHECK(a.rec.thread() != b.rec.thread());
    CHECK(a.rec.thread() != std::this_thread::get_id());
    // The shared instance is one object until destroyed.
    IAgoraAPI *s1 = getAgoraSDKInstanceCPP();
    CHECK(s1 == getAgoraSDKInstanceCPP());
    CHECK(s1 != a.api && s1 != b.api);
    Rec srec;
    s1->callbackSet(&srec);
    s1->login(S(APP), L("ind-shared"), S(NO_TOKEN), 0, nullptr, 0);
    srec.wait("onLoginSuccess|");
    s1->destroy();
    srec.wait("onLogout|101");
    IAgoraAPI *s2 = getAgoraSDKInstanceCPP();
    CHECK(s2 != s1);
    CHECK_EQ(s1->getStatus(), 0);
    // Destroying one instance leaves the others working.
    a.api->destroy();
    b.api->messageInstantSend(L("ind-a"), 0, L("stored"), L("i1"));
    b.rec.wait("onMessageSendSuccess|i1");
    s2->destroy();
}

static void one_instance_from_many_threads() {
    Client a("mt-a"), b("mt-b");
    a.login();
    b.login();
    const int T = 8, N = 40;
    std::vector<std::thread> threads;
    for (int th = 0; th < T; th++) {
        threads.push_back(std::thread([&a, &b, th] {
            for (int i = 0; i < N; i++) {
                std::string m = std::to_string(th) + "-" + std::to_string(i);
                a.api->messageInstantSend(S(b.account), 0, S(m), S(m));
                if (a.api->getStatus() != 2 || !a.api->isOnline()) t::async_fail("status");
                if (i % 10 == 0) a.api->queryUserStatus(S(b.account));
            }
        }));
    }
    for (size_t i = 0; i < threads.size(); i++) threads[i].join();
    a.rec.wait_n("onMessageSendSuccess|", T * N);
    std::vector<std::string> got = b.rec.wait_n("onMessageInstantReceive|mt-a|0|", T * N);
    // Each thread's messages arrive in the order it sent them.
    std::vector<int> last(T, -1);
    for (size_t k = 0; k < got.size(); k++) {
        std::string m = after(got[k], "onMessageInstantReceive|mt-a|0|");
        int th = std::atoi(m.c_str()), i = std::atoi(m.c_str() + m.find('-') + 1);
        CHECK(i > last[th]);
        last[th] = i;
    }
    a.rec.wait_n("onQueryUserStatusResult|mt-b|1", T * (N / 10));
}

static void methods_may_be_called_from_callbacks() {
    Client a("cb-a");
    std::atomic<int> logins{0};
    a.rec.hook = [&a, &logins](const std::string &l) {
        if (starts(l, "onLoginSuccess|")) {
            if (++logins == 1) a.api->channelJoin(L("cb-room"));
            else a.api->queryUserStatus(S(a.account));
        } else if (l == "onChannelJoined|cb-room") {
            a.api->messageChannelSend(L("cb-room"), L("from a callback"), L("cb1"));
        } else if (l == "onMessageSendSuccess|cb1") {
            a.api->logout();
        } else if (l == "onLogout|101") {
            // The vendor samples log in again from onLogout.
            a.api->login(S(APP), S(a.account), S(NO_TOKEN), 0, nullptr, 0);
        }
    };
    a.api->login(S(APP), S(a.account), S(NO_TOKEN), 0, nullptr, 0);
    a.rec.wait("onMessageChannelReceive|cb-room|cb-a|0|from a callback");
    a.rec.wait("onLogout|101");
    a.rec.wait("onQueryUserStatusResult|cb-a|1");
    a.rec.hook = nullptr;
}

static void destroy_inside_a_callback() {
    Client a("dic-a"), b("dic-b");
    std::atomic<bool> destroyed{false};
    std::atomic<size_t> at{0};
    a.rec.hook = [&](const std::string &l) {
        if (starts(l, "onMessageInstantReceive") && !destroyed) {
            a.api->destroy();
            at = a.rec.count();
            destroyed = true;
        }
    };
    a.login();
    b.login();
    for (int i = 0; i < 5; i++) b.api->messageInstantSend(S(a.account), 0, L("x"), "", 0);
    for (int i = 0; i < 1500 && !destroyed; i++) t::sleep_ms(10);
    CHECK(destroyed);
    t::sleep_ms(300);
    CHECK_EQ(a.rec.count(), at.load());
    CHECK_EQ(a.api->getStatus(), 0);
    // destroy logged the account out (the server may take a moment to notice).
    for (int i = 0;; i++) {
        b.api->queryUserStatus(S(a.account));
        if (b.rec.wait("onQueryUserStatusResult|dic-a|") == "onQueryUserStatusResult|dic-a|0") break;
        CHECK(i < 500);
        t::sleep_ms(10);
    }
}

static void destroy_while_callbacks_are_in_flight() {
    Client a("dif-a");
    a.login();
    IAgoraAPI *api = createAgoraSDKInstanceCPP();
    Rec *rec = new Rec;
    rec->hook = [](const std::string &) { t::sleep_ms(2); };
    api->callbackSet(rec);
    api->login(S(APP), L("dif-b"), S(NO_TOKEN), 0, nullptr, 0);
    rec->wait("onLoginSuccess|");
    for (int i = 0; i < 300; i++) a.api->messageInstantSend(L("dif-b"), 0, L("flood"), "", 0);
    while (rec->count() < 20) t::sleep_ms(1);
    // Destroy from two threads at once while another keeps calling. The caller is paced: each
    // send it makes before destroy takes the instance is one more callback destroy delivers
    // (2 ms each here), and an unpaced loop under valgrind's one-thread-at-a-time scheduler
    // can make tens of thousands of them before destroy gets the lock.
    std::atomic<bool> stop{false};
    std::thread caller([api, &stop] {
        while (!stop) {
            api->messageInstantSend(L("dif-a"), 0, L("late"), "", 0);
            (void)api->getStatus();
            t::sleep_ms(1);
        }
    });
    std::thread other([api] { api->destroy(); });
    api->destroy();
    other.join();
    // No callback runs once destroy has returned: the recorder can go.
    size_t n = rec->count();
    delete rec;
    t::sleep_ms(200);
    stop = true;
    caller.join();
    CHECK(n >= 20);
    CHECK_EQ(api->getStatus(), 0);
}

struct OnlyTwo : ICallBack {
    std::atomic<uint32_t> uid{0};
    std::mutex m;
    std::string got;
    // Without `override`, as older code has it (the recorder uses it throughout).
    virtual void onLoginSuccess(uint32_t u, int) { uid = u; }
    virtual void onMessageInstantReceive(char const *, size_t, uint32_t, char const *msg,
                                         size_t) {
        std::lock_guard<std::mutex> g(m);
        got = msg; // relies on the NUL at msg[size]
    }
};

static void an_app_overriding_only_two_callbacks() {
    OnlyTwo two;
    IAgoraAPI *api = createAgoraSDKInstanceCPP();
    api->callbackSet(&two);
    api->channelJoin(L("before-login")); // onChannelJoinFailed and onError: not overridden
    api->login(S(APP), L("two-a"), S(NO_TOKEN), 0, nullptr, 0);
    Client b("two-b");
    b.login();
    for (int i = 0; i < 1500 && two.uid == 0; i++) t::sleep_ms(10);
    CHECK(two.uid != 0);
    b.api->messageInstantSend(L("two-a"), 0, L("just this"), "", 0);
    std::string got;
    for (int i = 0; i < 1500 && got.empty(); i++) {
        t::sleep_ms(10);
        std::lock_guard<std::mutex> g(two.m);
        got = two.got;
    }
    CHECK_EQ(got, std::string("just this"));
    api->channelJoin(L("two-room"));
    api->destroy();
}

static void start_blocks_until_stop_or_destroy() {
    Client a("ss-a");
    std::atomic<bool> returned{false};
    std::thread th([&] {
        a.api->start();
        returned = true;
    });
    t::sleep_ms(200);
    CHECK(!returned);
    a.api->stop();
    th.join();
    CHECK(returned);

    // Inside a callback it returns at once; the instance works without it.
    std::atomic<bool> in_cb{false};
    a.rec.hook = [&](const std::string &l) {
        if (starts(l, "onLoginSuccess|")) {
            a.api->start();
            in_cb = true;
        }
    };
    a.login();
    for (int i = 0; i < 1500 && !in_cb; i++) t::sleep_ms(10);
    CHECK(in_cb);

    returned = false;
    std::thread th2([&] {
        a.api->start();
        returned = true;
    });
    t::sleep_ms(100);
    a.api->destroy();
    th2.join();
    CHECK(returned);
}

static void a_destroyed_instance_is_a_no_op() {
    IAgoraAPI *api = createAgoraSDKInstanceCPP();
    Rec rec;
    api->callbackSet(&rec);
    api->login(S(APP), L("noop-a"), S(NO_TOKEN), 0, nullptr, 0);
    rec.wait("onLoginSuccess|");
    api->destroy();
    rec.wait("onLogout|101");
    size_t n = rec.count();

    api->login(S(APP), L("noop-a"), S(NO_TOKEN), 0, nullptr, 0);
    api->login2(S(APP), L("noop-a"), S(NO_TOKEN), 0, nullptr, 0, 1, 1);
    api->logout();
    api->invoke(L("x"), L("{}"), L("c"));
    api->messageInstantSend(L("x"), 0, L("m"), L("i"));
    api->queryUserStatus(L("x"));
    api->setAttr(L("a"), L("b"));
    api->getAttr(L("a"));
    api->getAttrAll();
    api->getUserAttr(L("x"), L("a"));
    api->getUserAttrAll(L("x"));
    api->channelJoin(L("c"));
    api->channelLeave(L("c"));
    api->channelQueryUserNum(L("c"));
    api->channelQueryUserIsIn(L("c"), L("x"));
    api->channelSetAttr(L("c"), L("a"), L("b"));
    api->channelDelAttr(L("c"), L("a"));
    api->channelClearAttr(L("c"));
    api->messageChannelSend(L("c"), L("m"), L("i"));
    api->messageChannelSendForce(L("c"), L("m"), L("i"));
    api->channelInviteUser(L("c"), L("x"));
    api->channelInviteUser2(L("c"), L("x"), L("{}"));
    api->channelInviteDTMF(L("c"), L("x"), L("1"));
    api->channelInviteAccept(L("c"), L("x"), 0, L("{}"));
    api->channelInviteRefuse(L("c"), L("x"), 0);
    api->channelInviteEnd(L("c"), L("x"), 0);
    api->messageDTMFSend(0, L("1"), L("i"));
    api->messageDTMFSend(0, std::string("1"), std::string("i"));
    api->channelInvitePhone(L("c"), L("+1"));
    api->channelInvitePhone(std::string("c"), std::string("+1"));
    api->channelInvitePhone2(L("c"), L("+1"), L("+2"));
    api->channelInvitePhone2(std::string("c"), std::string("+1"), std::string("+2"));
    api->channelInvitePhone3(L("c"), L("+1"), L("+2"), L("{}"));
    api->channelInvitePhone3(std::string("c"), std::string("+1"), std::string("+2"),
                             std::string("{}"));
    api->start();
    api->stop();
    api->destroy();
    CHECK_EQ(api->getStatus(), 0);
    CHECK(!api->isOnline());
    CHECK_EQ(api->getSdkVersion(), 1000100000);
    CHECK(api->callbackGet() == &rec);
    CHECK_EQ(beckon_sig_set_server_url(beckon_sig_of(api), L("tcp://127.0.0.1:7400")), 1004);
    t::sleep_ms(200);
    CHECK_EQ(rec.count(), n);
}

static void the_windows_api_takes_its_app_id_from_the_factory() {
    typedef t::Recorder<agora_sdk_win::ICallBack> WinRec;
    agora_sdk_win::IAgoraAPI *w = createAgoraSDKInstanceWin(S(APP));
    WinRec rec;
    w->callbackSet(&rec);
    w->login("", 0, L("win-a"), S(NO_TOKEN), 0, "", 0);
    rec.wait("onLoginSuccess|");
    Client c("win-c");
    c.login();
    c.api->queryUserStatus(L("win-a"));
    CHECK_EQ(c.rec.wait("onQueryUserStatusResult|"), "onQueryUserStatusResult|win-a|1");
    agora_sdk_win::IAgoraAPI *shared = getAgoraSDKInstanceWin(S(APP));
    CHECK(shared == getAgoraSDKInstanceWin(S(APP)));
    CHECK(shared != w);
    CHECK(static_cast<void *>(shared) != static_cast<void *>(getAgoraSDKInstanceCPP()));
    w->destroy();
    shared->destroy();
    getAgoraSDKInstanceCPP()->destroy();
}

static void the_c_struct_matches_the_library() {
    CHECK_EQ(beckon_sig_callbacks_size(), sizeof(beckon_sig_callbacks));
    CHECK_EQ(sizeof(beckon_sig_callbacks), 32 * sizeof(void *));
}

// Every callback of the Linux seed has been seen by some test.
static bool every_callback_was_seen() {
    const char *all[] = {"onReconnecting", "onReconnected", "onLoginSuccess", "onLogout",
                         "onLoginFailed", "onChannelJoined", "onChannelJoinFailed",
                         "onChannelLeaved", "onChannelUserJoined", "onChannelUserLeaved",
                         "onChannelUserList", "onChannelQueryUserNumResult",
                         "onChannelQueryUserIsIn", "onChannelAttrUpdated", "onInviteReceived",
                         "onInviteReceivedByPeer", "onInviteAcceptedByPeer",
                         "onInviteRefusedByPeer", "onInviteFailed", "onInviteEndByPeer",
                         "onInviteEndByMyself", "onInviteMsg", "onMessageSendError",
                         "onMessageSendSuccess", "onMessageInstantReceive",
                         "onMessageChannelReceive", "onLog", "onInvokeRet", "onUserAttrResult",
                         "onUserAttrAllResult", "onError", "onQueryUserStatusResult"};
    bool ok = true;
    std::lock_guard<std::mutex> g(t::seen_mutex());
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (!t::seen().count(all[i])) {
            std::cout << "FAIL no test saw " << all[i] << std::endl;
            ok = false;
        }
    }
    if (ok) std::cout << "ok   every callback of the seed was seen" << std::endl;
    return ok;
}

int main(int argc, char **argv) {
    std::vector<t::Test> tests = {
        {"lifecycle_and_status", lifecycle_and_status},
        {"logout_during_login_cancels_it", logout_during_login_cancels_it},
        {"a_second_login_of_an_account_kicks_the_first",
         a_second_login_of_an_account_kicks_the_first},
        {"a_wrong_token_fails_the_login", a_wrong_token_fails_the_login},
        {"p2p_messages", p2p_messages},
        {"user_attributes", user_attributes},
        {"invoke_calls_server_functions", invoke_calls_server_functions},
        {"channels", channels},
        {"calls", calls},
        {"phone_calls_through_a_gateway", phone_calls_through_a_gateway},
        {"privileged_sends_and_special_channels", privileged_sends_and_special_channels},
        {"calls_before_login_fail_with_1003", calls_before_login_fail_with_1003},
        {"bad_logins_are_refused_and_change_nothing", bad_logins_are_refused_and_change_nothing},
        {"bad_arguments_after_login", bad_arguments_after_login},
        {"rate_limits", rate_limits},
        {"reconnects_after_a_cut", reconnects_after_a_cut},
        {"server_urls_and_alternates", server_urls_and_alternates},
        {"instances_are_independent", instances_are_independent},
        {"one_instance_from_many_threads", one_instance_from_many_threads},
        {"methods_may_be_called_from_callbacks", methods_may_be_called_from_callbacks},
        {"destroy_inside_a_callback", destroy_inside_a_callback},
        {"destroy_while_callbacks_are_in_flight", destroy_while_callbacks_are_in_flight},
        {"an_app_overriding_only_two_callbacks", an_app_overriding_only_two_callbacks},
        {"start_blocks_until_stop_or_destroy", start_blocks_until_stop_or_destroy},
        {"a_destroyed_instance_is_a_no_op", a_destroyed_instance_is_a_no_op},
        {"the_windows_api_takes_its_app_id_from_the_factory",
         the_windows_api_takes_its_app_id_from_the_factory},
        {"the_c_struct_matches_the_library", the_c_struct_matches_the_library},
    };
    return t::run_tests(tests, argc, argv, every_callback_was_seen);
}
