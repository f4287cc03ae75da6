// A console chat written only against the Signaling SDK for Linux (agora_sdk_cpp): it builds
// unchanged against Beckon's agora_sig.h and libagorasig.
//
//   g++ -std=c++11 chat.cpp -Iinclude -Llibs -lagorasig -lpthread -o chat
//   BECKON_URL=tcp://127.0.0.1:7400 LD_LIBRARY_PATH=libs ./chat my-app alice
//
// Then type a line of text to say it in the channel you joined, or a command:
//   /msg <account> <text>    a message to one user      /who <account>   online or not
//   /join <channel>          join a channel             /leave           leave it
//   /members                 how many are in it         /attr <name> <value>   set yours
//   /attrs <account>         someone's attributes       /call <account>  invite to the channel
//   /accept  /refuse         answer the last invitation /end             end the call
//   /dtmf <digits>           send DTMF in the call      /quit            log out and exit

#include "agora_sig.h"

#include <iostream>
#include <mutex>
#include <sstream>
#include <string>

using namespace agora_sdk_cpp;
using namespace std;

static IAgoraAPI *agora;
static mutex out_mutex, state_mutex;
static string g_account, g_channel, g_peer, g_call_channel;

// Callbacks run on the SDK thread while main() reads stdin: one line at a time.
#define SAY(x)                                                                                    \
    do {                                                                                          \
        lock_guard<mutex> g_(out_mutex);                                                          \
        cout << x << endl;                                                                        \
    } while (0)

class CallBack : public ICallBack {
  public:
    void onLoginSuccess(uint32_t uid, int) override {
        SAY("logged in as " << g_account << " (uid " << uid << ")");
    }
    void onLoginFailed(int ecode) override { SAY("login failed: " << ecode); }
    void onLogout(int ecode) override { SAY("logged out: " << ecode); }
    void onReconnecting(uint32_t nretry) override { SAY("reconnecting (" << nretry << ")"); }
    void onReconnected(int) override { SAY("reconnected"); }
    void onError(char const *name, size_t, int ecode, char const *desc, size_t) override {
        SAY("error in " << name << ": " << ecode << " " << desc);
    }

    void onMessageInstantReceive(char const *account, size_t, uint32_t, char const *msg,
                                 size_t) override {
        SAY(account << ": " << msg);
    }
    void onMessageSendError(char const *messageID, size_t, int ecode) override {
        SAY("message " << messageID << " not sent: " << ecode);
    }
    void onQueryUserStatusResult(char const *name, size_t, char const *status, size_t) override {
        SAY(name << " is " << (string(status) == "1" ? "online" : "offline"));
    }
    void onUserAttrAllResult(char const *account, size_t, char const *value, size_t) override {
        SAY("attributes of " << account << ": " << value);
    }

    void onChannelJoined(char const *channelID, size_t) override {
        SAY("joined #" << channelID);
    }
    void onChannelJoinFailed(char const *channelID, size_t, int ecode) override {
        SAY("could not join #" << channelID << ": " << ecode);
    }
    void onChannelLeaved(char const *channelID, size_t, int) override {
        SAY("left #" << channelID);
    }
    void onChannelUserList(int n, char **accounts, uint32_t *) override {
        string list;
        for (int i = 0; i < n; i++) list += string(i ? ", " : "") + accounts[i];
        SAY("members: " << list);
    }
    void onChannelUserJoined(char const *account, size_t, uint32_t) override {
        SAY("* " << account << " joined");
    }
    void onChannelUserLeaved(char const *account, size_t, uint32_t) override {
        SAY("* " << account << " left");
    }
    void onChannelQueryUserNumResult(char const *channelID, size_t, int, int num) override {
        SAY("#" << channelID << " has " << num << " members");
    }
    void onMessageChannelReceive(char const *channelID, size_t, char const *account, size_t,
                                 uint32_t, char const *msg, size_t) override {
        SAY("[#" << channelID << "] " << account << ": " << msg);
    }

    void onInviteReceived(char const *channelID, size_t, char const *account, size_t, uint32_t,
                          char const *, size_t) override {
        {
            lock_guard<mutex> g(state_mutex);
            g_peer = account;
            g_call_channel = channelID;
        }
        SAY("call from " << account << " on #" << channelID << " (/accept or /refuse)");
    }
    void onInviteReceivedByPeer(char const *, size_t, char const *account, size_t,
                                uint32_t) override {
        SAY("ringing " << account);
    }
    void onInviteAcceptedByPeer(char const *, size_t, char const *account, size_t, uint32_t,
                                char const *, size_t) override {
        SAY(account << " accepted the call");
    }
    void onInviteRefusedByPeer(char const *, size_t, char const *account, size_t, uint32_t,
                               char const *, size_t) override {
        SAY(account << " refused the call");
    }
    void onInviteFailed(char const *, size_t, char const *account, size_t, uint32_t, int ecode,
                        char const *, size_t) override {
        SAY("call to " << account << " failed: " << ecode);
    }
    void onInviteEndByPeer(char const *, size_t, char const *account, size_t, uint32_t,
                           char const *, size_t) override {
        SAY(account << " ended the call");
    }
    void onInviteEndByMyself(char const *, size_t, char const *account, size_t,
                             uint32_t) override {
        SAY("call with " << account << " ended");
    }
    void onInviteMsg(char const *, size_t, char const *account, size_t, uint32_t,
                     char const *msgType, size_t, char const *msgData, size_t, char const *,
                     size_t) override {
        SAY(msgType << " from " << account << ": " << msgData);
    }
};

static void call_state(string &channel, string &peer) {
    lock_guard<mutex> g(state_mutex);
    channel = g_call_channel;
    peer = g_peer;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        cerr << "usage: " << argv[0] << " <appId> <account> [token]" << endl;
        return 2;
    }
    string app = argv[1];
    g_account = argv[2];
    string token = argc > 3 ? argv[3] : "_no_need_token";

    agora = getAgoraSDKInstanceCPP();
    agora->callbackSet(new CallBack());
    agora->login(app.data(), app.size(), g_account.data(), g_account.size(), token.data(),
                 token.size(), 0, "", 0);

    string line;
    while (getline(cin, line)) {
        istringstream in(line);
        string cmd, arg;
        in >> cmd;
        if (cmd.empty()) continue;
        if (cmd[0] != '/') {
            agora->messageChannelSend(g_channel.data(), g_channel.size(), line.data(),
                                      line.size(), "", 0);
            continue;
        }
        in >> arg;
        string rest;
        getline(in >> ws, rest);
        if (cmd == "/msg") {
            agora->messageInstantSend(arg.data(), arg.size(), 0, rest.data(), rest.size(), "", 0);
        } else if (cmd == "/who") {
            agora->queryUserStatus(arg.data(), arg.size());
        } else if (cmd == "/join") {
            g_channel = arg;
            agora->channelJoin(arg.data(), arg.size());
        } else if (cmd == "/leave") {
            agora->channelLeave(g_channel.data(), g_channel.size());
        } else if (cmd == "/members") {
            agora->channelQueryUserNum(g_channel.data(), g_channel.size());
        } else if (cmd == "/attr") {
            agora->setAttr(arg.data(), arg.size(), rest.data(), rest.size());
        } else if (cmd == "/attrs") {
            agora->getUserAttrAll(arg.data(), arg.size());
        } else if (cmd == "/call") {
            {
                lock_guard<mutex> g(state_mutex);
                g_peer = arg;
                g_call_channel = g_channel;
            }
            agora->channelInviteUser(g_channel.data(), g_channel.size(), arg.data(), arg.size());
        } else if (cmd == "/accept" || cmd == "/refuse") {
            string channel, peer;
            call_state(channel, peer);
            if (cmd == "/accept") {
                agora->channelInviteAccept(channel.data(), channel.size(), peer.data(),
                                           peer.size(), 0, "", 0);
            } else {
                agora->channelInviteRefuse(channel.data(), channel.size(), peer.data(),
                                           peer.size(), 0, "", 0);
            }
        } else if (cmd == "/end") {
            string channel, peer;
            call_state(channel, peer);
            agora->channelInviteEnd(channel.data(), channel.size(), peer.data(), peer.size(), 0);
        } else if (cmd == "/dtmf") {
            string channel, peer;
            call_state(channel, peer);
            agora->channelInviteDTMF(channel.data(), channel.size(), peer.data(), peer.size(),
                                     arg.data(), arg.size());
        } else if (cmd == "/quit") {
            break;
        } else {
            SAY("unknown command " << cmd);
        }
    }
    ICallBack *cb = agora->callbackGet();
    agora->destroy(); // logs out; no callback runs after it returns
    delete cb;
    SAY("bye");
    return 0;
}
