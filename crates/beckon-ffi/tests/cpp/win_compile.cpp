// Compile-only: code written against the Signaling SDK for Windows (agora_sdk_win), as
// applications in the field have it — `using namespace`, both factories, every callback
// overridden including the vendor header's extras — builds against agora_sig.h with g++ and
// clang++, -Wall -Wextra -Werror. It is compiled and linked, not run.

#include "agora_sig.h"

#include <cstdio>
#include <string>

using namespace agora_sdk_win;

class WinCallBack : public ICallBack {
  public:
    void onReconnecting(uint32_t nretry) override { std::printf("%u\n", nretry); }
    void onReconnected(int fd) override { std::printf("%d\n", fd); }
    void onLoginSuccess(uint32_t uid, int fd) override { std::printf("%u %d\n", uid, fd); }
    void onLogout(int ecode) override { std::printf("%d\n", ecode); }
    void onLoginFailed(int ecode) override { std::printf("%d\n", ecode); }
    void onChannelJoined(char const *channelID, size_t) override { std::puts(channelID); }
    void onChannelJoinFailed(char const *channelID, size_t, int) override { std::puts(channelID); }
    void onChannelLeaved(char const *channelID, size_t, int) override { std::puts(channelID); }
    void onChannelUserJoined(char const *account, size_t, uint32_t) override { std::puts(account); }
    void onChannelUserLeaved(char const *account, size_t, uint32_t) override { std::puts(account); }
    void onChannelUserList(int n, char **accounts, uint32_t *uids) override {
        for (int i = 0; i < n; i++) std::printf("%s %u\n", accounts[i], uids[i]);
    }
    void onChannelQueryUserNumResult(char const *, size_t, int, int num) override {
        std::printf("%d\n", num);
    }
    void onChannelQueryUserIsIn(char const *, size_t, char const *, size_t, int isIn) override {
        std::printf("%d\n", isIn);
    }
    void onChannelAttrUpdated(char const *, size_t, char const *name, size_t, char const *,
                              size_t, char const *, size_t) override {
        std::puts(name);
    }
    void onInviteReceived(char const *, size_t, char const *account, size_t, uint32_t,
                          char const *, size_t) override {
        std::puts(account);
    }
    void onInviteReceivedByPeer(char const *, size_t, char const *, size_t, uint32_t) override {}
    void onInviteAcceptedByPeer(char const *, size_t, char const *, size_t, uint32_t, char const *,
                                size_t) override {}
    void onInviteRefusedByPeer(char const *, size_t, char const *, size_t, uint32_t, char const *,
                               size_t) override {}
    void onInviteFailed(char const *, size_t, char const *, size_t, uint32_t, int, char const *,
                        size_t) override {}
    void onInviteEndByPeer(char const *, size_t, char const *, size_t, uint32_t, char const *,
                           size_t) override {}
    void onInviteEndByMyself(char const *, size_t, char const *, size_t, uint32_t) override {}
    void onInviteMsg(char const *, size_t, char const *, size_t, uint32_t, char const *, size_t,
                     char const *, size_t, char const *, size_t) override {}
    void onMessageSendError(char const *, size_t, int) override {}
    void onMessageSendProgress(char const *, size_t, char const *, size_t, char const *, size_t,
                               char const *, size_t) override {}
    void onMessageSendSuccess(char const *, size_t) override {}
    void onMessageAppReceived(char const *, size_t) override {}
    void onMessageInstantReceive(char const *, size_t, uint32_t, char const *, size_t) override {}
    void onMessageChannelReceive(char const *, size_t, char const *, size_t, uint32_t,
                                 char const *, size_t) override {}
    void onLog(char const *, size_t) override {}
    void onInvokeRet(char const *, size_t, char const *, size_t, char const *, size_t) override {}
    void onMsg(char const *, size_t, char const *, size_t, char const *, size_t) override {}
    void onUserAttrResult(char const *, size_t, char const *, size_t, char const *,
                          size_t) override {}
    void onUserAttrAllResult(char const *, size_t, char const *, size_t) override {}
    void onError(char const *, size_t, int, char const *, size_t) override {}
    void onQueryUserStatusResult(char const *, size_t, char const *, size_t) override {}
    void onDbg(char const *, size_t, char const *, size_t) override {}
    void onBCCall_result(char const *, size_t, char const *, size_t, char const *,
                         size_t) override {}
};

// Every method, with the seed's parameter lists and defaults.
static void use(IAgoraAPI *api) {
    std::string app = "app", account = "alice", token = "_no_need_token", ch = "room";
    api->callbackSet(new WinCallBack());
    ICallBack *cb = api->callbackGet();
    api->login(app.c_str(), app.size(), account.c_str(), account.size(), token.c_str(),
               token.size(), 0, NULL, 0);
    api->login2(app.c_str(), app.size(), account.c_str(), account.size(), token.c_str(),
                token.size(), 0, NULL, 0, 30, 3);
    api->queryUserStatus("bob", 3);
    api->setAttr("k", 1, "v", 1);
    api->getAttr("k", 1);
    api->getAttrAll();
    api->getUserAttr("bob", 3, "k", 1);
    api->getUserAttrAll("bob", 3);
    api->invoke("io.agora.signal.channel_query_num", 33, "{}", 2, "c1", 2);
    api->messageInstantSend("bob", 3, 0, "hi", 2, "", 0);
    api->channelJoin(ch.c_str(), ch.size());
    api->channelLeave(ch.c_str(), ch.size());
    api->channelQueryUserNum(ch.c_str(), ch.size());
    api->channelQueryUserIsIn(ch.c_str(), ch.size(), "bob", 3);
    api->channelSetAttr(ch.c_str(), ch.size(), "k", 1, "v", 1);
    api->channelDelAttr(ch.c_str(), ch.size(), "k", 1);
    api->channelClearAttr(ch.c_str(), ch.size());
    api->messageChannelSend(ch.c_str(), ch.size(), "hi", 2, "", 0);
    api->messageChannelSendForce(ch.c_str(), ch.size(), "hi", 2, "", 0);
    api->channelInviteUser(ch.c_str(), ch.size(), "bob", 3);
    api->channelInviteUser(ch.c_str(), ch.size(), "bob", 3, 0);
    api->channelInviteUser2(ch.c_str(), ch.size(), "bob", 3, "{}", 2);
    api->channelInviteDTMF(ch.c_str(), ch.size(), "bob", 3, "1", 1);
    api->channelInviteAccept(ch.c_str(), ch.size(), "bob", 3, 0, "{}", 2);
    api->channelInviteRefuse(ch.c_str(), ch.size(), "bob", 3, 0, "{}", 2);
    api->channelInviteEnd(ch.c_str(), ch.size(), "bob", 3, 0);
    api->messageDTMFSend(0, "1", 1, "", 0);
    api->channelInvitePhone(ch.c_str(), ch.size(), "+1", 2);
    api->channelInvitePhone(ch.c_str(), ch.size(), "+1", 2, 0);
    api->channelInvitePhone2(ch.c_str(), ch.size(), "+1", 2, "+2", 2);
    api->channelInvitePhone3(ch.c_str(), ch.size(), "+1", 2, "+2", 2, "{}", 2);
    bool online = api->isOnline();
    int status = api->getStatus() + api->getSdkVersion() + (online ? 1 : 0);
    if (status == LOGIN_STATE_LOGINED || status == GENERAL_E_WRONG_PARAM) api->logout();
    api->start();
    api->stop();
    api->destroy();
    delete cb;
}

int main() {
    std::string app = "app";
    IAgoraAPI *shared = getAgoraSDKInstanceWin(app.c_str(), app.size());
    agora_sdk_win::IAgoraAPI *fresh = createAgoraSDKInstanceWin(app.c_str(), app.size());
    AGORA_E_CODE code = LOGIN_E_NET;
    if (code == SUCCESS) return 1;
    use(shared);
    use(fresh);
    return 0;
}
