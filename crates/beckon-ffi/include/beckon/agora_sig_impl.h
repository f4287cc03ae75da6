/*
 * beckon/agora_sig_impl.h — the implementation of agora_sig.h's C++ API over the C API of
 * beckon_sig.h: inline code, namespace beckon_sig_detail (not part of the API), and the
 * factories. agora_sig.h includes it; include agora_sig.h, not this file.
 */
#ifndef BECKON_AGORA_SIG_IMPL_H
#define BECKON_AGORA_SIG_IMPL_H

#if !defined(BECKON_AGORA_SIG_H) || !defined(__cplusplus)
#error "beckon/agora_sig_impl.h is part of agora_sig.h: include agora_sig.h, compiled as C++"
#endif

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

/* ---- the implementation of the C++ API over the C API (not part of the API) ------------------ */

namespace beckon_sig_detail {

/** Runs a callback; an exception leaving it is swallowed, as it must not unwind into C. */
template <class F> inline void guarded(F f) {
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
    try {
        f();
    } catch (...) {
    }
#else
    f();
#endif
}

/** The methods both namespaces share, forwarded to the C API. */
template <class Api, class Cb> class Common : public Api {
  public:
    explicit Common(beckon_sig *sig) : sig_(sig), handler_(nullptr) {}
    Common(const Common &) = delete;
    Common &operator=(const Common &) = delete;

    // The obsolete interfaces' other forms (agora_sdk_cpp's std::string ones) stay visible.
    using Api::messageDTMFSend;
    using Api::channelInvitePhone;
    using Api::channelInvitePhone2;
    using Api::channelInvitePhone3;

    void callbackSet(Cb *handler) override { handler_.store(handler); }
    Cb *callbackGet() override { return handler_.load(); }

    void login(char const *appId, size_t appId_size, char const *account, size_t account_size,
               char const *token, size_t token_size, uint32_t uid, char const *deviceID,
               size_t deviceID_size) override {
        beckon_sig_login(sig_, appId, appId_size, account, account_size, token, token_size, uid,
                         deviceID, deviceID_size);
    }
    void login2(char const *appId, size_t appId_size, char const *account, size_t account_size,
                char const *token, size_t token_size, uint32_t uid, char const *deviceID,
                size_t deviceID_size, int retry_time_in_s, int retry_count) override {
        beckon_sig_login2(sig_, appId, appId_size, account, account_size, token, token_size, uid,
                          deviceID, deviceID_size, retry_time_in_s, retry_count);
    }
    void logout() override { beckon_sig_logout(sig_); }
    void invoke(char const *name, size_t name_size, char const *req, size_t req_size,
                char const *callID, size_t callID_size) override {
        beckon_sig_invoke(sig_, name, name_size, req, req_size, callID, callID_size);
    }
    void messageInstantSend(char const *account, size_t account_size, uint32_t uid,
                            char const *msg, size_t msg_size, char const *msgID,
                            size_t msgID_size) override {
        beckon_sig_message_instant_send(sig_, account, account_size, uid, msg, msg_size, msgID,
                                        msgID_size);
    }
    void queryUserStatus(char const *account, size_t account_size) override {
        beckon_sig_query_user_status(sig_, account, account_size);
    }
    void setAttr(char const *name, size_t name_size, char const *value,
                 size_t value_size) override {
        beckon_sig_set_attr(sig_, name, name_size, value, value_size);
    }
    void getAttr(char const *name, size_t name_size) override {
        beckon_sig_get_attr(sig_, name, name_size);
    }
    void getAttrAll() override { beckon_sig_get_attr_all(sig_); }
    void getUserAttr(char const *account, size_t account_size, char const *name,
                     size_t name_size) override {
        beckon_sig_get_user_attr(sig_, account, account_size, name, name_size);
    }
    void getUserAttrAll(char const *account, size_t account_size) override {
        beckon_sig_get_user_attr_all(sig_, account, account_size);
    }
    void channelJoin(char const *channelID, size_t channelID_size) override {
        beckon_sig_channel_join(sig_, channelID, channelID_size);
    }
    void channelLeave(char const *channelID, size_t channelID_size) override {
        beckon_sig_channel_leave(sig_, channelID, channelID_size);
    }
    void channelQueryUserNum(char const *channelID, size_t channelID_size) override {
        beckon_sig_channel_query_user_num(sig_, channelID, channelID_size);
    }
    void channelQueryUserIsIn(char const *channelID, size_t channelID_size, char const *account,
                              size_t account_size) override {
        beckon_sig_channel_query_user_is_in(sig_, channelID, channelID_size, account,
                                            account_size);
    }
    void channelSetAttr(char const *channelID, size_t channelID_size, char const *name,
                        size_t name_size, char const *value, size_t value_size) override {
        beckon_sig_channel_set_attr(sig_, channelID, channelID_size, name, name_size, value,
                                    value_size);
    }
    void channelDelAttr(char const *channelID, size_t channelID_size, char const *name,
                        size_t name_size) override {
        beckon_sig_channel_del_attr(sig_, channelID, channelID_size, name, name_size);
    }
    void channelClearAttr(char const *channelID, size_t channelID_size) override {
        beckon_sig_channel_clear_attr(sig_, channelID, channelID_size);
    }
    void messageChannelSend(char const *channelID, size_t channelID_size, char const *msg,
                            size_t msg_size, char const *msgID, size_t msgID_size) override {
        beckon_sig_message_channel_send(sig_, channelID, channelID_size, msg, msg_size, msgID,
                                        msgID_size);
    }
    void messageChannelSendForce(char const *channelID, size_t channelID_size, char const *msg,
                                 size_t msg_size, char const *msgID,
                                 size_t msgID_size) override {
        beckon_sig_message_channel_send_force(sig_, channelID, channelID_size, msg, msg_size,
                                              msgID, msgID_size);
    }
    void channelInviteUser(char const *channelID, size_t channelID_size, char const *account,
                           size_t account_size, uint32_t uid) override {
        beckon_sig_channel_invite_user(sig_, channelID, channelID_size, account, account_size,
                                       uid);
    }
    void channelInviteUser2(char const *channelID, size_t channelID_size, char const *account,
                            size_t account_size, char const *extra, size_t extra_size) override {
        beckon_sig_channel_invite_user2(sig_, channelID, channelID_size, account, account_size,
                                        extra, extra_size);
    }
    void channelInviteDTMF(char const *channelID, size_t channelID_size, char const *phoneNum,
                           size_t phoneNum_size, char const *dtmf, size_t dtmf_size) override {
        beckon_sig_channel_invite_dtmf(sig_, channelID, channelID_size, phoneNum, phoneNum_size,
                                       dtmf, dtmf_size);
    }
    void channelInviteAccept(char const *channelID, size_t channelID_size, char const *account,
                             size_t account_size, uint32_t uid, char const *extra,
                             size_t extra_size) override {
        beckon_sig_channel_invite_accept(sig_, channelID, channelID_size, account, account_size,
                                         uid, extra, extra_size);
    }
    void channelInviteRefuse(char const *channelID, size_t channelID_size, char const *account,
                             size_t account_size, uint32_t uid, char const *extra,
                             size_t extra_size) override {
        beckon_sig_channel_invite_refuse(sig_, channelID, channelID_size, account, account_size,
                                         uid, extra, extra_size);
    }
    void channelInviteEnd(char const *channelID, size_t channelID_size, char const *account,
                          size_t account_size, uint32_t uid) override {
        beckon_sig_channel_invite_end(sig_, channelID, channelID_size, account, account_size,
                                      uid);
    }
    int getStatus() override { return beckon_sig_get_status(sig_); }
    int getSdkVersion() override { return beckon_sig_get_sdk_version(sig_); }
    void start() override { beckon_sig_start(sig_); }
    void stop() override { beckon_sig_stop(sig_); }
    void destroy() override { beckon_sig_destroy(sig_); }
    void messageDTMFSend(uint32_t uid, char const *msg, size_t msg_size, char const *msgID,
                         size_t msgID_size) override {
        beckon_sig_message_dtmf_send(sig_, uid, msg, msg_size, msgID, msgID_size);
    }
    void channelInvitePhone(char const *channelID, size_t channelID_size, char const *phoneNum,
                            size_t phoneNum_size, uint32_t uid) override {
        beckon_sig_channel_invite_phone(sig_, channelID, channelID_size, phoneNum, phoneNum_size,
                                        uid);
    }
    void channelInvitePhone2(char const *channelID, size_t channelID_size, char const *phoneNum,
                             size_t phoneNum_size, char const *sourcesNum,
                             size_t sourcesNum_size) override {
        beckon_sig_channel_invite_phone2(sig_, channelID, channelID_size, phoneNum,
                                         phoneNum_size, sourcesNum, sourcesNum_size);
    }
    void channelInvitePhone3(char const *channelID, size_t channelID_size, char const *phoneNum,
                             size_t phoneNum_size, char const *sourcesNum,
                             size_t sourcesNum_size, char const *extra,
                             size_t extra_size) override {
        beckon_sig_channel_invite_phone3(sig_, channelID, channelID_size, phoneNum,
                                         phoneNum_size, sourcesNum, sourcesNum_size, extra,
                                         extra_size);
    }
    bool isOnline() override { return beckon_sig_is_online(sig_) != 0; }

    beckon_sig *handle() const { return sig_; }

  protected:
    /** Binds `fresh` to its handle unless another object is bound already; returns the one
     * bound (deleting `fresh` if it lost), or nullptr. */
    template <class Self> static Self *attach(Self *fresh) {
        beckon_sig_callbacks table = Self::table();
        void *bound = beckon_sig_bind(fresh->sig_, &table, sizeof table, fresh);
        if (bound != fresh) {
            delete fresh;
        }
        return static_cast<Self *>(bound);
    }

    static Cb *handler(void *user) { return static_cast<Common *>(user)->handler_.load(); }

    static beckon_sig_callbacks table() {
        beckon_sig_callbacks t;
        t.on_login_success = [](void *u, uint32_t uid, int fd) {
            if (Cb *cb = handler(u)) guarded([&] { cb->onLoginSuccess(uid, fd); });
        };
        t.on_login_failed = [](void *u, int ecode) {
            if (Cb *cb = handler(u)) guarded([&] { cb->onLoginFailed(ecode); });
        };
        t.on_logout = [](void *u, int ecode) {
            if (Cb *cb = handler(u)) guarded([&] { cb->onLogout(ecode); });
        };
        t.on_reconnecting = [](void *u, uint32_t nretry) {
            if (Cb *cb = handler(u)) guarded([&] { cb->onReconnecting(nretry); });
        };
        t.on_reconnected = [](void *u, int fd) {
            if (Cb *cb = handler(u)) guarded([&] { cb->onReconnected(fd); });
        };
        t.on_error = [](void *u, const char *name, size_t name_size, int ecode, const char *desc,
                        size_t desc_size) {
            if (Cb *cb = handler(u))
                guarded([&] { cb->onError(name, name_size, ecode, desc, desc_size); });
        };
        t.on_log = [](void *u, const char *txt, size_t txt_size) {
            if (Cb *cb = handler(u)) guarded([&] { cb->onLog(txt, txt_size); });
        };
        t.on_query_user_status_result = [](void *u, const char *name, size_t name_size,
                                           const char *status, size_t status_size) {
            if (Cb *cb = handler(u))
                guarded([&] { cb->onQueryUserStatusResult(name, name_size, status, status_size); });
        };
        t.on_user_attr_result = [](void *u, const char *account, size_t account_size,
                                   const char *name, size_t name_size, const char *value,
                                   size_t value_size) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onUserAttrResult(account, account_size, name, name_size, value,
                                         value_size);
                });
        };
        t.on_user_attr_all_result = [](void *u, const char *account, size_t account_size,
                                       const char *value, size_t value_size) {
            if (Cb *cb = handler(u))
                guarded([&] { cb->onUserAttrAllResult(account, account_size, value, value_size); });
        };
        t.on_invoke_ret = [](void *u, const char *call_id, size_t call_id_size, const char *err,
                             size_t err_size, const char *resp, size_t resp_size) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onInvokeRet(call_id, call_id_size, err, err_size, resp, resp_size);
                });
        };
        t.on_message_send_success = [](void *u, const char *id, size_t id_size) {
            if (Cb *cb = handler(u)) guarded([&] { cb->onMessageSendSuccess(id, id_size); });
        };
        t.on_message_send_error = [](void *u, const char *id, size_t id_size, int ecode) {
            if (Cb *cb = handler(u)) guarded([&] { cb->onMessageSendError(id, id_size, ecode); });
        };
        t.on_message_instant_receive = [](void *u, const char *account, size_t account_size,
                                          uint32_t uid, const char *msg, size_t msg_size) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onMessageInstantReceive(account, account_size, uid, msg, msg_size);
                });
        };
        t.on_message_channel_receive = [](void *u, const char *channel, size_t channel_size,
                                          const char *account, size_t account_size, uint32_t uid,
                                          const char *msg, size_t msg_size) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onMessageChannelReceive(channel, channel_size, account, account_size, uid,
                                                msg, msg_size);
                });
        };
        t.on_channel_joined = [](void *u, const char *channel, size_t channel_size) {
            if (Cb *cb = handler(u)) guarded([&] { cb->onChannelJoined(channel, channel_size); });
        };
        t.on_channel_join_failed = [](void *u, const char *channel, size_t channel_size,
                                      int ecode) {
            if (Cb *cb = handler(u))
                guarded([&] { cb->onChannelJoinFailed(channel, channel_size, ecode); });
        };
        t.on_channel_leaved = [](void *u, const char *channel, size_t channel_size, int ecode) {
            if (Cb *cb = handler(u))
                guarded([&] { cb->onChannelLeaved(channel, channel_size, ecode); });
        };
        t.on_channel_user_joined = [](void *u, const char *, size_t, const char *account,
                                      size_t account_size, uint32_t uid) {
            if (Cb *cb = handler(u))
                guarded([&] { cb->onChannelUserJoined(account, account_size, uid); });
        };
        t.on_channel_user_leaved = [](void *u, const char *, size_t, const char *account,
                                      size_t account_size, uint32_t uid) {
            if (Cb *cb = handler(u))
                guarded([&] { cb->onChannelUserLeaved(account, account_size, uid); });
        };
        t.on_channel_user_list = [](void *u, const char *, size_t, int n, char **accounts,
                                    uint32_t *uids) {
            if (Cb *cb = handler(u)) guarded([&] { cb->onChannelUserList(n, accounts, uids); });
        };
        t.on_channel_query_user_num_result = [](void *u, const char *channel,
                                                size_t channel_size, int ecode, int num) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onChannelQueryUserNumResult(channel, channel_size, ecode, num);
                });
        };
        t.on_channel_query_user_is_in = [](void *u, const char *channel, size_t channel_size,
                                           const char *account, size_t account_size, int is_in) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onChannelQueryUserIsIn(channel, channel_size, account, account_size,
                                               is_in);
                });
        };
        t.on_channel_attr_updated = [](void *u, const char *channel, size_t channel_size,
                                       const char *name, size_t name_size, const char *value,
                                       size_t value_size, const char *type, size_t type_size) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onChannelAttrUpdated(channel, channel_size, name, name_size, value,
                                             value_size, type, type_size);
                });
        };
        t.on_invite_received = [](void *u, const char *channel, size_t channel_size,
                                  const char *account, size_t account_size, uint32_t uid,
                                  const char *extra, size_t extra_size) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onInviteReceived(channel, channel_size, account, account_size, uid,
                                         extra, extra_size);
                });
        };
        t.on_invite_received_by_peer = [](void *u, const char *channel, size_t channel_size,
                                          const char *account, size_t account_size,
                                          uint32_t uid) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onInviteReceivedByPeer(channel, channel_size, account, account_size, uid);
                });
        };
        t.on_invite_accepted_by_peer = [](void *u, const char *channel, size_t channel_size,
                                          const char *account, size_t account_size, uint32_t uid,
                                          const char *extra, size_t extra_size) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onInviteAcceptedByPeer(channel, channel_size, account, account_size, uid,
                                               extra, extra_size);
                });
        };
        t.on_invite_refused_by_peer = [](void *u, const char *channel, size_t channel_size,
                                         const char *account, size_t account_size, uint32_t uid,
                                         const char *extra, size_t extra_size) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onInviteRefusedByPeer(channel, channel_size, account, account_size, uid,
                                              extra, extra_size);
                });
        };
        t.on_invite_failed = [](void *u, const char *channel, size_t channel_size,
                                const char *account, size_t account_size, uint32_t uid, int ecode,
                                const char *extra, size_t extra_size) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onInviteFailed(channel, channel_size, account, account_size, uid, ecode,
                                       extra, extra_size);
                });
        };
        t.on_invite_end_by_peer = [](void *u, const char *channel, size_t channel_size,
                                     const char *account, size_t account_size, uint32_t uid,
                                     const char *extra, size_t extra_size) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onInviteEndByPeer(channel, channel_size, account, account_size, uid,
                                          extra, extra_size);
                });
        };
        t.on_invite_end_by_myself = [](void *u, const char *channel, size_t channel_size,
                                       const char *account, size_t account_size, uint32_t uid) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onInviteEndByMyself(channel, channel_size, account, account_size, uid);
                });
        };
        t.on_invite_msg = [](void *u, const char *channel, size_t channel_size,
                             const char *account, size_t account_size, uint32_t uid,
                             const char *msg_type, size_t msg_type_size, const char *msg_data,
                             size_t msg_data_size, const char *extra, size_t extra_size) {
            if (Cb *cb = handler(u))
                guarded([&] {
                    cb->onInviteMsg(channel, channel_size, account, account_size, uid, msg_type,
                                    msg_type_size, msg_data, msg_data_size, extra, extra_size);
                });
        };
        return t;
    }

    beckon_sig *sig_;

  private:
    std::atomic<Cb *> handler_;
};

/** agora_sdk_cpp::IAgoraAPI: Common plus the std::string forms of the obsolete interfaces. */
class CppApi final : public Common<agora_sdk_cpp::IAgoraAPI, agora_sdk_cpp::ICallBack> {
  public:
    using Common<agora_sdk_cpp::IAgoraAPI, agora_sdk_cpp::ICallBack>::messageDTMFSend;
    using Common<agora_sdk_cpp::IAgoraAPI, agora_sdk_cpp::ICallBack>::channelInvitePhone;
    using Common<agora_sdk_cpp::IAgoraAPI, agora_sdk_cpp::ICallBack>::channelInvitePhone2;
    using Common<agora_sdk_cpp::IAgoraAPI, agora_sdk_cpp::ICallBack>::channelInvitePhone3;

    static agora_sdk_cpp::IAgoraAPI *attach(beckon_sig *sig) {
        return sig ? Common::attach(new CppApi(sig)) : nullptr;
    }

    void messageDTMFSend(uint32_t uid, std::string msg, std::string msgID) override {
        beckon_sig_message_dtmf_send(sig_, uid, msg.data(), msg.size(), msgID.data(),
                                     msgID.size());
    }
    void channelInvitePhone(std::string channelID, std::string phoneNum, uint32_t uid) override {
        beckon_sig_channel_invite_phone(sig_, channelID.data(), channelID.size(), phoneNum.data(),
                                        phoneNum.size(), uid);
    }
    void channelInvitePhone2(std::string channelID, std::string phoneNum,
                             std::string sourcesNum) override {
        beckon_sig_channel_invite_phone2(sig_, channelID.data(), channelID.size(),
                                         phoneNum.data(), phoneNum.size(), sourcesNum.data(),
                                         sourcesNum.size());
    }
    void channelInvitePhone3(std::string channelID, std::string phoneNum, std::string sourcesNum,
                             std::string extra) override {
        beckon_sig_channel_invite_phone3(sig_, channelID.data(), channelID.size(),
                                         phoneNum.data(), phoneNum.size(), sourcesNum.data(),
                                         sourcesNum.size(), extra.data(), extra.size());
    }

  private:
    explicit CppApi(beckon_sig *sig) : Common(sig) {}
};

/** agora_sdk_win::IAgoraAPI. */
class WinApi final : public Common<agora_sdk_win::IAgoraAPI, agora_sdk_win::ICallBack> {
  public:
    static agora_sdk_win::IAgoraAPI *attach(beckon_sig *sig, char const *appId,
                                            size_t appId_size) {
        if (!sig) return nullptr;
        beckon_sig_set_default_app_id(sig, appId, appId_size);
        return Common::attach(new WinApi(sig));
    }

  private:
    explicit WinApi(beckon_sig *sig) : Common(sig) {}
};

} /* namespace beckon_sig_detail */

/**
 * The C handle behind an instance made by this header's factories, for the C functions that
 * have no IAgoraAPI method (beckon_sig_set_server_url). NULL for NULL; undefined for objects
 * from anywhere else.
 */
inline beckon_sig *beckon_sig_of(agora_sdk_cpp::IAgoraAPI *api) {
    return api ? static_cast<beckon_sig_detail::CppApi *>(api)->handle() : nullptr;
}
inline beckon_sig *beckon_sig_of(agora_sdk_win::IAgoraAPI *api) {
    return api ? static_cast<beckon_sig_detail::WinApi *>(api)->handle() : nullptr;
}

/** The process's shared instance (the same object at every call until it is destroyed). */
extern "C" inline agora_sdk_cpp::IAgoraAPI *getAgoraSDKInstanceCPP() {
    return beckon_sig_detail::CppApi::attach(beckon_sig_shared(BECKON_SIG_SHARED_CPP));
}

/** A new independent instance at each call (NULL if the library could not start). */
extern "C" inline agora_sdk_cpp::IAgoraAPI *createAgoraSDKInstanceCPP() {
    return beckon_sig_detail::CppApi::attach(beckon_sig_create());
}

/** The process's shared Windows-API instance; appId becomes its default App ID. */
extern "C" inline agora_sdk_win::IAgoraAPI *getAgoraSDKInstanceWin(char const *appId,
                                                                    size_t appId_size) {
    return beckon_sig_detail::WinApi::attach(beckon_sig_shared(BECKON_SIG_SHARED_WIN), appId,
                                             appId_size);
}

/** A new independent Windows-API instance; appId becomes its default App ID. */
extern "C" inline agora_sdk_win::IAgoraAPI *createAgoraSDKInstanceWin(char const *appId,
                                                                       size_t appId_size) {
    return beckon_sig_detail::WinApi::attach(beckon_sig_create(), appId, appId_size);
}

#endif /* BECKON_AGORA_SIG_IMPL_H */
