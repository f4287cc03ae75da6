/*
 * agora_sig.h — Beckon's C and C++ SDK.
 *
 * One header, two APIs over one library (libagorasig.so / libagorasig.a):
 *
 *  - C++: the Signaling API of the Linux SDK (namespace agora_sdk_cpp) and of the Windows SDK
 *    (namespace agora_sdk_win), class for class and parameter for parameter — IAgoraAPI,
 *    ICallBack, the factories getAgoraSDKInstanceCPP / createAgoraSDKInstanceCPP and
 *    getAgoraSDKInstanceWin / createAgoraSDKInstanceWin — so code written for those SDKs
 *    compiles and runs unchanged. Needs C++11.
 *  - C: the same API as plain functions over an opaque handle (beckon_sig), with callbacks in a
 *    struct of function pointers that receive a `void *user` (beckon_sig_callbacks). C99.
 *
 * The C++ classes are implemented in this header, inline, on top of the C API: the library
 * exports only C symbols, so it does not depend on the C++ compiler, standard library or ABI
 * of the application.
 *
 * Server. The seeds' API has no parameter for the server, so an instance connects, at each
 * login, to the first URL set of: beckon_sig_set_server_url() for that instance (from C++:
 * beckon_sig_set_server_url(beckon_sig_of(api), url, len)), beckon_set_server_url() for the
 * process, the environment variable BECKON_URL, and tcp://127.0.0.1:7400. A URL is tcp://, tls://, quic://, ws:// or wss:// then host:port
 * (WebSocket URLs may add a path); several URLs separated by commas are alternates, tried in
 * turn. The secure schemes trust the certificates in the PEM file BECKON_TLS_CA, else the
 * system's CA bundle; BECKON_TLS_DANGEROUS_ACCEPT_ANY_CERT=1 trusts any certificate (for a
 * development server's self-signed one only).
 *
 * Threads. Every instance has one SDK thread on which its callbacks run, one at a time and in
 * order. Every method may be called from any thread, callbacks included; none blocks, except
 * destroy() (see below) and start(). Strings handed to a callback are NUL-terminated at
 * ptr[size] and valid until the callback returns; copy what you keep.
 *
 * Lifetime. destroy() logs out (waiting up to about two seconds for the server to confirm),
 * delivers the callbacks still queued (onLogout among them), stops the SDK thread and frees
 * the instance's resources; when it returns, no callback of that instance runs any more, so
 * the ICallBack may be deleted. Called from inside a callback (on an SDK thread) it cannot
 * wait for callbacks: the events still queued are dropped and no further callback starts.
 * The object an application holds stays valid after destroy(): every later call on it is a
 * no-op (getStatus() reads 0, isOnline() false, callbackGet() the handler last set); this
 * costs a few dozen bytes per destroyed instance for the life of the process. Destroy every
 * instance before the process exits: the SDK thread may otherwise call into objects that
 * static destructors have already destroyed.
 *
 * docs/sdk-cpp.md in the Beckon repository maps every method and callback and lists what
 * differs from the SDKs this API comes from.
 */
#ifndef BECKON_AGORA_SIG_H
#define BECKON_AGORA_SIG_H

#ifdef __cplusplus
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#else
#include <stddef.h>
#include <stdint.h>
#endif

/* ---- error codes ------------------------------------------------------------------------- */

/*
 * Every code the API reports, with the numbers of the Signaling API. Beckon adds 301, 402,
 * 403, 1006 and 1007; 209 is the vendor's and never reported by Beckon. C sees them as
 * BECKON_<NAME> (BECKON_LOGIN_E_NET), C++ as agora_sdk_cpp::<NAME> and agora_sdk_win::<NAME>
 * (enum AGORA_E_CODE).
 */
#define BECKON_SIG_CODES(X)                                                                       \
    X(SUCCESS, 0)                                                                                 \
    X(LOGOUT_E_OTHER, 100)                                                                        \
    X(LOGOUT_E_USER, 101)                                                                         \
    X(LOGOUT_E_NET, 102)                                                                          \
    X(LOGOUT_E_KICKED, 103)                                                                       \
    X(LOGOUT_E_PACKET, 104)                                                                       \
    X(LOGOUT_E_TOKENEXPIRED, 105)                                                                 \
    X(LOGOUT_E_OLDVERSION, 106)                                                                   \
    X(LOGOUT_E_TOKENWRONG, 107)                                                                   \
    X(LOGOUT_E_ALREADY_LOGOUT, 108)                                                               \
    X(LOGIN_E_OTHER, 200)                                                                         \
    X(LOGIN_E_NET, 201)                                                                           \
    X(LOGIN_E_FAILED, 202)                                                                        \
    X(LOGIN_E_CANCEL, 203)                                                                        \
    X(LOGIN_E_TOKENEXPIRED, 204)                                                                  \
    X(LOGIN_E_OLDVERSION, 205)                                                                    \
    X(LOGIN_E_TOKENWRONG, 206)                                                                    \
    X(LOGIN_E_TOKEN_KICKED, 207)                                                                  \
    X(LOGIN_E_ALREADY_LOGIN, 208)                                                                 \
    X(LOGIN_E_INVALID_USER, 209)                                                                  \
    X(JOINCHANNEL_E_OTHER, 300)                                                                   \
    X(JOINCHANNEL_E_FORBIDDEN, 301)                                                               \
    X(SENDMESSAGE_E_OTHER, 400)                                                                   \
    X(SENDMESSAGE_E_TIMEOUT, 401)                                                                 \
    X(SENDMESSAGE_E_RATELIMIT, 402)                                                               \
    X(SENDMESSAGE_E_PEEROFFLINE, 403)                                                             \
    X(QUERYUSERNUM_E_OTHER, 500)                                                                  \
    X(QUERYUSERNUM_E_TIMEOUT, 501)                                                                \
    X(QUERYUSERNUM_E_BYUSER, 502)                                                                 \
    X(LEAVECHANNEL_E_OTHER, 600)                                                                  \
    X(LEAVECHANNEL_E_KICKED, 601)                                                                 \
    X(LEAVECHANNEL_E_BYUSER, 602)                                                                 \
    X(LEAVECHANNEL_E_LOGOUT, 603)                                                                 \
    X(LEAVECHANNEL_E_DISCONN, 604)                                                                \
    X(INVITE_E_OTHER, 700)                                                                        \
    X(INVITE_E_REINVITE, 701)                                                                     \
    X(INVITE_E_NET, 702)                                                                          \
    X(INVITE_E_PEEROFFLINE, 703)                                                                  \
    X(INVITE_E_TIMEOUT, 704)                                                                      \
    X(INVITE_E_CANTRECV, 705)                                                                     \
    X(GENERAL_E, 1000)                                                                            \
    X(GENERAL_E_FAILED, 1001)                                                                     \
    X(GENERAL_E_UNKNOWN, 1002)                                                                    \
    X(GENERAL_E_NOT_LOGIN, 1003)                                                                  \
    X(GENERAL_E_WRONG_PARAM, 1004)                                                                \
    X(GENERAL_E_LARGE_PARAM, 1005)                                                                \
    X(GENERAL_E_RATELIMIT, 1006)                                                                  \
    X(GENERAL_E_OVERLOAD, 1007)

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the C API ---------------------------------------------------------------------------- */

#define BECKON_SIG_C_CODE_(name, value) BECKON_##name = value,
/** The error codes, as BECKON_LOGIN_E_NET and so on. */
enum beckon_sig_code { BECKON_SIG_CODES(BECKON_SIG_C_CODE_) };
#undef BECKON_SIG_C_CODE_

/** getStatus() / beckon_sig_get_status(). */
enum beckon_sig_status {
    BECKON_STATUS_NOT_LOGGED_IN = 0,
    BECKON_STATUS_LOGGING_IN = 1,
    BECKON_STATUS_LOGGED_IN = 2,
    BECKON_STATUS_RECONNECTING = 3
};

/** The shared instance each language surface uses (beckon_sig_shared). */
#define BECKON_SIG_SHARED_C 0u
#define BECKON_SIG_SHARED_CPP 1u
#define BECKON_SIG_SHARED_WIN 2u

/**
 * One client instance. Handles are never freed: after beckon_sig_destroy() every call with
 * the handle is a no-op, so a stale handle is harmless. NULL is accepted everywhere, as a
 * no-op.
 */
typedef struct beckon_sig beckon_sig;

/**
 * The callbacks of an instance: one function per callback of the Signaling API, each given
 * the `user` pointer passed with the struct. A NULL member ignores that event. Strings are
 * (pointer, size) pairs, NUL-terminated at pointer[size], valid until the function returns.
 * Functions run on the instance's SDK thread, one at a time, in order; they may call any
 * beckon_sig_ function. They must return normally: no C++ exception, longjmp or thread exit
 * may leave them.
 *
 * Unlike the C++ ICallBack, the channel-member callbacks name the channel.
 */
typedef struct beckon_sig_callbacks {
    void (*on_login_success)(void *user, uint32_t uid, int fd);
    void (*on_login_failed)(void *user, int ecode);
    void (*on_logout)(void *user, int ecode);
    void (*on_reconnecting)(void *user, uint32_t nretry);
    void (*on_reconnected)(void *user, int fd);
    void (*on_error)(void *user, const char *name, size_t name_size, int ecode, const char *desc,
                     size_t desc_size);
    void (*on_log)(void *user, const char *txt, size_t txt_size);
    void (*on_query_user_status_result)(void *user, const char *name, size_t name_size,
                                        const char *status, size_t status_size);
    void (*on_user_attr_result)(void *user, const char *account, size_t account_size,
                                const char *name, size_t name_size, const char *value,
                                size_t value_size);
    void (*on_user_attr_all_result)(void *user, const char *account, size_t account_size,
                                    const char *value, size_t value_size);
    void (*on_invoke_ret)(void *user, const char *call_id, size_t call_id_size, const char *err,
                          size_t err_size, const char *resp, size_t resp_size);
    void (*on_message_send_success)(void *user, const char *message_id, size_t message_id_size);
    void (*on_message_send_error)(void *user, const char *message_id, size_t message_id_size,
                                  int ecode);
    void (*on_message_instant_receive)(void *user, const char *account, size_t account_size,
                                       uint32_t uid, const char *msg, size_t msg_size);
    void (*on_message_channel_receive)(void *user, const char *channel, size_t channel_size,
                                       const char *account, size_t account_size, uint32_t uid,
                                       const char *msg, size_t msg_size);
    void (*on_channel_joined)(void *user, const char *channel, size_t channel_size);
    void (*on_channel_join_failed)(void *user, const char *channel, size_t channel_size,
                                   int ecode);
    void (*on_channel_leaved)(void *user, const char *channel, size_t channel_size, int ecode);
    void (*on_channel_user_joined)(void *user, const char *channel, size_t channel_size,
                                   const char *account, size_t account_size, uint32_t uid);
    void (*on_channel_user_leaved)(void *user, const char *channel, size_t channel_size,
                                   const char *account, size_t account_size, uint32_t uid);
    /* accounts[n] is NULL. */
    void (*on_channel_user_list)(void *user, const char *channel, size_t channel_size, int n,
                                 char **accounts, uint32_t *uids);
    void (*on_channel_query_user_num_result)(void *user, const char *channel,
                                             size_t channel_size, int ecode, int num);
    void (*on_channel_query_user_is_in)(void *user, const char *channel, size_t channel_size,
                                        const char *account, size_t account_size, int is_in);
    void (*on_channel_attr_updated)(void *user, const char *channel, size_t channel_size,
                                    const char *name, size_t name_size, const char *value,
                                    size_t value_size, const char *type, size_t type_size);
    void (*on_invite_received)(void *user, const char *channel, size_t channel_size,
                               const char *account, size_t account_size, uint32_t uid,
                               const char *extra, size_t extra_size);
    void (*on_invite_received_by_peer)(void *user, const char *channel, size_t channel_size,
                                       const char *account, size_t account_size, uint32_t uid);
    void (*on_invite_accepted_by_peer)(void *user, const char *channel, size_t channel_size,
                                       const char *account, size_t account_size, uint32_t uid,
                                       const char *extra, size_t extra_size);
    void (*on_invite_refused_by_peer)(void *user, const char *channel, size_t channel_size,
                                      const char *account, size_t account_size, uint32_t uid,
                                      const char *extra, size_t extra_size);
    void (*on_invite_failed)(void *user, const char *channel, size_t channel_size,
                             const char *account, size_t account_size, uint32_t uid, int ecode,
                             const char *extra, size_t extra_size);
    void (*on_invite_end_by_peer)(void *user, const char *channel, size_t channel_size,
                                  const char *account, size_t account_size, uint32_t uid,
                                  const char *extra, size_t extra_size);
    void (*on_invite_end_by_myself)(void *user, const char *channel, size_t channel_size,
                                    const char *account, size_t account_size, uint32_t uid);
    void (*on_invite_msg)(void *user, const char *channel, size_t channel_size,
                          const char *account, size_t account_size, uint32_t uid,
                          const char *msg_type, size_t msg_type_size, const char *msg_data,
                          size_t msg_data_size, const char *extra, size_t extra_size);
} beckon_sig_callbacks;

/* Lifecycle. */

/** A new independent instance, or NULL if the library could not start its threads. */
beckon_sig *beckon_sig_create(void);
/** The process's shared instance number `slot` (a new one if the previous was destroyed). */
beckon_sig *beckon_sig_shared(uint32_t slot);
/** Logs out, delivers what is queued, stops the SDK thread (see "Lifetime" above). */
void beckon_sig_destroy(beckon_sig *sig);
/**
 * Sets the callbacks (copied: `callbacks` need not outlive the call; `callbacks_size` is
 * sizeof(beckon_sig_callbacks), so that an older program keeps working with a newer library)
 * and the user pointer. NULL callbacks removes them.
 */
void beckon_sig_set_callbacks(beckon_sig *sig, const beckon_sig_callbacks *callbacks,
                              size_t callbacks_size, void *user);
/**
 * Sets callbacks and user pointer only if none were bound yet, and returns the user pointer
 * now bound (`user` if this call bound it). One C++ object per shared instance relies on it.
 */
void *beckon_sig_bind(beckon_sig *sig, const beckon_sig_callbacks *callbacks,
                      size_t callbacks_size, void *user);
/** sizeof(beckon_sig_callbacks) as the library knows it. */
size_t beckon_sig_callbacks_size(void);

/* Configuration. */

/**
 * The server URL(s) for logins of every instance from now on, overriding BECKON_URL; NULL or
 * "" returns to BECKON_URL / the default. Returns 0, or BECKON_GENERAL_E_WRONG_PARAM (1004)
 * for a URL the SDK cannot use (nothing changes then).
 */
int beckon_set_server_url(const char *url, size_t url_size);
/** As beckon_set_server_url, for this instance's logins only (overriding the process's). */
int beckon_sig_set_server_url(beckon_sig *sig, const char *url, size_t url_size);
/** The App ID a login with an empty appId uses (the Windows factories pass theirs here). */
void beckon_sig_set_default_app_id(beckon_sig *sig, const char *app_id, size_t app_id_size);

/* The Signaling API. Parameters as in the C++ API below; uid parameters are ignored. */

void beckon_sig_login(beckon_sig *sig, const char *app_id, size_t app_id_size,
                      const char *account, size_t account_size, const char *token,
                      size_t token_size, uint32_t uid, const char *device_id,
                      size_t device_id_size);
void beckon_sig_login2(beckon_sig *sig, const char *app_id, size_t app_id_size,
                       const char *account, size_t account_size, const char *token,
                       size_t token_size, uint32_t uid, const char *device_id,
                       size_t device_id_size, int retry_time_in_s, int retry_count);
void beckon_sig_logout(beckon_sig *sig);
void beckon_sig_invoke(beckon_sig *sig, const char *name, size_t name_size, const char *req,
                       size_t req_size, const char *call_id, size_t call_id_size);
void beckon_sig_message_instant_send(beckon_sig *sig, const char *account, size_t account_size,
                                     uint32_t uid, const char *msg, size_t msg_size,
                                     const char *msg_id, size_t msg_id_size);
void beckon_sig_query_user_status(beckon_sig *sig, const char *account, size_t account_size);
void beckon_sig_set_attr(beckon_sig *sig, const char *name, size_t name_size, const char *value,
                         size_t value_size);
void beckon_sig_get_attr(beckon_sig *sig, const char *name, size_t name_size);
void beckon_sig_get_attr_all(beckon_sig *sig);
void beckon_sig_get_user_attr(beckon_sig *sig, const char *account, size_t account_size,
                              const char *name, size_t name_size);
void beckon_sig_get_user_attr_all(beckon_sig *sig, const char *account, size_t account_size);
void beckon_sig_channel_join(beckon_sig *sig, const char *channel, size_t channel_size);
void beckon_sig_channel_leave(beckon_sig *sig, const char *channel, size_t channel_size);
void beckon_sig_channel_query_user_num(beckon_sig *sig, const char *channel,
                                       size_t channel_size);
void beckon_sig_channel_query_user_is_in(beckon_sig *sig, const char *channel,
                                         size_t channel_size, const char *account,
                                         size_t account_size);
void beckon_sig_channel_set_attr(beckon_sig *sig, const char *channel, size_t channel_size,
                                 const char *name, size_t name_size, const char *value,
                                 size_t value_size);
void beckon_sig_channel_del_attr(beckon_sig *sig, const char *channel, size_t channel_size,
                                 const char *name, size_t name_size);
void beckon_sig_channel_clear_attr(beckon_sig *sig, const char *channel, size_t channel_size);
void beckon_sig_message_channel_send(beckon_sig *sig, const char *channel, size_t channel_size,
                                     const char *msg, size_t msg_size, const char *msg_id,
                                     size_t msg_id_size);
void beckon_sig_message_channel_send_force(beckon_sig *sig, const char *channel,
                                           size_t channel_size, const char *msg, size_t msg_size,
                                           const char *msg_id, size_t msg_id_size);
void beckon_sig_channel_invite_user(beckon_sig *sig, const char *channel, size_t channel_size,
                                    const char *account, size_t account_size, uint32_t uid);
void beckon_sig_channel_invite_user2(beckon_sig *sig, const char *channel, size_t channel_size,
                                     const char *account, size_t account_size,
                                     const char *extra, size_t extra_size);
void beckon_sig_channel_invite_phone(beckon_sig *sig, const char *channel, size_t channel_size,
                                     const char *phone_num, size_t phone_num_size, uint32_t uid);
void beckon_sig_channel_invite_phone2(beckon_sig *sig, const char *channel, size_t channel_size,
                                      const char *phone_num, size_t phone_num_size,
                                      const char *sources_num, size_t sources_num_size);
void beckon_sig_channel_invite_phone3(beckon_sig *sig, const char *channel, size_t channel_size,
                                      const char *phone_num, size_t phone_num_size,
                                      const char *sources_num, size_t sources_num_size,
                                      const char *extra, size_t extra_size);
void beckon_sig_channel_invite_dtmf(beckon_sig *sig, const char *channel, size_t channel_size,
                                    const char *phone_num, size_t phone_num_size,
                                    const char *dtmf, size_t dtmf_size);
void beckon_sig_channel_invite_accept(beckon_sig *sig, const char *channel, size_t channel_size,
                                      const char *account, size_t account_size, uint32_t uid,
                                      const char *extra, size_t extra_size);
void beckon_sig_channel_invite_refuse(beckon_sig *sig, const char *channel, size_t channel_size,
                                      const char *account, size_t account_size, uint32_t uid,
                                      const char *extra, size_t extra_size);
void beckon_sig_channel_invite_end(beckon_sig *sig, const char *channel, size_t channel_size,
                                   const char *account, size_t account_size, uint32_t uid);
void beckon_sig_message_dtmf_send(beckon_sig *sig, uint32_t uid, const char *msg,
                                  size_t msg_size, const char *msg_id, size_t msg_id_size);
/** Blocks the calling thread until beckon_sig_stop() or beckon_sig_destroy() (on an SDK
 * thread it returns at once). Callbacks run on the SDK thread whether or not it is called. */
void beckon_sig_start(beckon_sig *sig);
/** Releases every beckon_sig_start() waiting on this instance. */
void beckon_sig_stop(beckon_sig *sig);
/** 0 not logged in, 1 logging in, 2 logged in, 3 reconnecting. */
int beckon_sig_get_status(const beckon_sig *sig);
/** 1 when logged in and connected (status 2), else 0. */
int beckon_sig_is_online(const beckon_sig *sig);
/** The SDK version as 1MMmmppbbb (1000100000 is 0.1.0 build 0). */
int beckon_sig_get_sdk_version(const beckon_sig *sig);

#ifdef __cplusplus
} /* extern "C" */

/* ---- the C++ API ---------------------------------------------------------------------------- */

#define BECKON_SIG_CPP_CODE_(name, value) name = value,

/** The Linux SDK's API (Signaling SDK for Linux v1.4.0). */
namespace agora_sdk_cpp {

typedef enum { BECKON_SIG_CODES(BECKON_SIG_CPP_CODE_) } AGORA_E_CODE;

/** getStatus(). */
enum {
    LOGIN_STATE_NOT_LOGIN = 0,
    LOGIN_STATE_LOGINING = 1,
    LOGIN_STATE_LOGINED = 2,
    LOGIN_STATE_RECONNECTING = 3
};

/**
 * The application's callbacks: override what you need. They run on the instance's SDK thread,
 * one at a time, in order; uid arguments are 0, fd arguments 0.
 */
class ICallBack {
  public:
    virtual ~ICallBack() {}
    virtual void onReconnecting(uint32_t /*nretry*/) {}
    virtual void onReconnected(int /*fd*/) {}
    virtual void onLoginSuccess(uint32_t /*uid*/, int /*fd*/) {}
    virtual void onLogout(int /*ecode*/) {}
    virtual void onLoginFailed(int /*ecode*/) {}
    virtual void onChannelJoined(char const * /*channelID*/, size_t /*channelID_size*/) {}
    virtual void onChannelJoinFailed(char const * /*channelID*/, size_t /*channelID_size*/,
                                     int /*ecode*/) {}
    virtual void onChannelLeaved(char const * /*channelID*/, size_t /*channelID_size*/,
                                 int /*ecode*/) {}
    virtual void onChannelUserJoined(char const * /*account*/, size_t /*account_size*/,
                                     uint32_t /*uid*/) {}
    virtual void onChannelUserLeaved(char const * /*account*/, size_t /*account_size*/,
                                     uint32_t /*uid*/) {}
    virtual void onChannelUserList(int /*n*/, char ** /*accounts*/, uint32_t * /*uids*/) {}
    virtual void onChannelQueryUserNumResult(char const * /*channelID*/, size_t /*channelID_size*/,
                                             int /*ecode*/, int /*num*/) {}
    virtual void onChannelQueryUserIsIn(char const * /*channelID*/, size_t /*channelID_size*/,
                                        char const * /*account*/, size_t /*account_size*/,
                                        int /*isIn*/) {}
    virtual void onChannelAttrUpdated(char const * /*channelID*/, size_t /*channelID_size*/,
                                      char const * /*name*/, size_t /*name_size*/,
                                      char const * /*value*/, size_t /*value_size*/,
                                      char const * /*type*/, size_t /*type_size*/) {}
    virtual void onInviteReceived(char const * /*channelID*/, size_t /*channelID_size*/,
                                  char const * /*account*/, size_t /*account_size*/,
                                  uint32_t /*uid*/, char const * /*extra*/,
                                  size_t /*extra_size*/) {}
    virtual void onInviteReceivedByPeer(char const * /*channelID*/, size_t /*channelID_size*/,
                                        char const * /*account*/, size_t /*account_size*/,
                                        uint32_t /*uid*/) {}
    virtual void onInviteAcceptedByPeer(char const * /*channelID*/, size_t /*channelID_size*/,
                                        char const * /*account*/, size_t /*account_size*/,
                                        uint32_t /*uid*/, char const * /*extra*/,
                                        size_t /*extra_size*/) {}
    virtual void onInviteRefusedByPeer(char const * /*channelID*/, size_t /*channelID_size*/,
                                       char const * /*account*/, size_t /*account_size*/,
                                       uint32_t /*uid*/, char const * /*extra*/,
                                       size_t /*extra_size*/) {}
    virtual void onInviteFailed(char const * /*channelID*/, size_t /*channelID_size*/,
                                char const * /*account*/, size_t /*account_size*/, uint32_t /*uid*/,
                                int /*ecode*/, char const * /*extra*/, size_t /*extra_size*/) {}
    virtual void onInviteEndByPeer(char const * /*channelID*/, size_t /*channelID_size*/,
                                   char const * /*account*/, size_t /*account_size*/,
                                   uint32_t /*uid*/, char const * /*extra*/,
                                   size_t /*extra_size*/) {}
    virtual void onInviteEndByMyself(char const * /*channelID*/, size_t /*channelID_size*/,
                                     char const * /*account*/, size_t /*account_size*/,
                                     uint32_t /*uid*/) {}
    virtual void onInviteMsg(char const * /*channelID*/, size_t /*channelID_size*/,
                             char const * /*account*/, size_t /*account_size*/, uint32_t /*uid*/,
                             char const * /*msgType*/, size_t /*msgType_size*/,
                             char const * /*msgData*/, size_t /*msgData_size*/,
                             char const * /*extra*/, size_t /*extra_size*/) {}
    virtual void onMessageSendError(char const * /*messageID*/, size_t /*messageID_size*/,
                                    int /*ecode*/) {}
    /** Never called by Beckon (no per-hop progress reports). */
    virtual void onMessageSendProgress(char const * /*account*/, size_t /*account_size*/,
                                       char const * /*messageID*/, size_t /*messageID_size*/,
                                       char const * /*type*/, size_t /*type_size*/,
                                       char const * /*info*/, size_t /*info_size*/) {}
    virtual void onMessageSendSuccess(char const * /*messageID*/, size_t /*messageID_size*/) {}
    /** Never called by Beckon (there are no app-server messages). */
    virtual void onMessageAppReceived(char const * /*msg*/, size_t /*msg_size*/) {}
    virtual void onMessageInstantReceive(char const * /*account*/, size_t /*account_size*/,
                                         uint32_t /*uid*/, char const * /*msg*/,
                                         size_t /*msg_size*/) {}
    virtual void onMessageChannelReceive(char const * /*channelID*/, size_t /*channelID_size*/,
                                         char const * /*account*/, size_t /*account_size*/,
                                         uint32_t /*uid*/, char const * /*msg*/,
                                         size_t /*msg_size*/) {}
    virtual void onLog(char const * /*txt*/, size_t /*txt_size*/) {}
    virtual void onInvokeRet(char const * /*callID*/, size_t /*callID_size*/, char const * /*err*/,
                             size_t /*err_size*/, char const * /*resp*/, size_t /*resp_size*/) {}
    /** Never called by Beckon. */
    virtual void onMsg(char const * /*from*/, size_t /*from_size*/, char const * /*t*/,
                       size_t /*t_size*/, char const * /*msg*/, size_t /*msg_size*/) {}
    virtual void onUserAttrResult(char const * /*account*/, size_t /*account_size*/,
                                  char const * /*name*/, size_t /*name_size*/,
                                  char const * /*value*/,
                                  size_t /*value_size*/) {}
    virtual void onUserAttrAllResult(char const * /*account*/, size_t /*account_size*/,
                                     char const * /*value*/, size_t /*value_size*/) {}
    virtual void onError(char const * /*name*/, size_t /*name_size*/, int /*ecode*/,
                         char const * /*desc*/, size_t /*desc_size*/) {}
    virtual void onQueryUserStatusResult(char const * /*name*/, size_t /*name_size*/,
                                         char const * /*status*/, size_t /*status_size*/) {}
    /** Never called by Beckon. */
    virtual void onDbg(char const * /*a*/, size_t /*a_size*/, char const * /*b*/,
                       size_t /*b_size*/) {}
    /** Never called by Beckon. */
    virtual void onBCCall_result(char const * /*reason*/, size_t /*reason_size*/,
                                 char const * /*json_ret*/, size_t /*json_ret_size*/,
                                 char const * /*callID*/, size_t /*callID_size*/) {}
};

/**
 * One client instance (from getAgoraSDKInstanceCPP or createAgoraSDKInstanceCPP). Every
 * string is a (pointer, size) pair of UTF-8; NULL with size 0 is "". Methods return at once;
 * results come to the ICallBack.
 */
class IAgoraAPI {
  public:
    virtual void callbackSet(ICallBack *handler) = 0;
    virtual ICallBack *callbackGet() = 0;

    virtual void login(char const *appId, size_t appId_size, char const *account,
                       size_t account_size, char const *token, size_t token_size, uint32_t uid,
                       char const *deviceID, size_t deviceID_size) = 0;
    virtual void login2(char const *appId, size_t appId_size, char const *account,
                        size_t account_size, char const *token, size_t token_size, uint32_t uid,
                        char const *deviceID, size_t deviceID_size, int retry_time_in_s,
                        int retry_count) = 0;
    virtual void logout() = 0;
    virtual void invoke(char const *name, size_t name_size, char const *req, size_t req_size,
                        char const *callID, size_t callID_size) = 0;
    virtual void messageInstantSend(char const *account, size_t account_size, uint32_t uid,
                                    char const *msg, size_t msg_size, char const *msgID,
                                    size_t msgID_size) = 0;
    virtual void queryUserStatus(char const *account, size_t account_size) = 0;
    virtual void setAttr(char const *name, size_t name_size, char const *value,
                         size_t value_size) = 0;
    virtual void getAttr(char const *name, size_t name_size) = 0;
    virtual void getAttrAll() = 0;
    virtual void getUserAttr(char const *account, size_t account_size, char const *name,
                             size_t name_size) = 0;
    virtual void getUserAttrAll(char const *account, size_t account_size) = 0;

    virtual void channelJoin(char const *channelID, size_t channelID_size) = 0;
    virtual void channelLeave(char const *channelID, size_t channelID_size) = 0;
    virtual void channelQueryUserNum(char const *channelID, size_t channelID_size) = 0;
    virtual void channelQueryUserIsIn(char const *channelID, size_t channelID_size,
                                      char const *account, size_t account_size) = 0;
    virtual void channelSetAttr(char const *channelID, size_t channelID_size, char const *name,
                                size_t name_size, char const *value, size_t value_size) = 0;
    virtual void channelDelAttr(char const *channelID, size_t channelID_size, char const *name,
                                size_t name_size) = 0;
    virtual void channelClearAttr(char const *channelID, size_t channelID_size) = 0;
    virtual void messageChannelSend(char const *channelID, size_t channelID_size,
                                    char const *msg, size_t msg_size, char const *msgID,
                                    size_t msgID_size) = 0;
    virtual void messageChannelSendForce(char const *channelID, size_t channelID_size,
                                         char const *msg, size_t msg_size, char const *msgID,
                                         size_t msgID_size) = 0;

    virtual void channelInviteUser(char const *channelID, size_t channelID_size,
                                   char const *account, size_t account_size,
                                   uint32_t uid = 0) = 0;
    virtual void channelInviteUser2(char const *channelID, size_t channelID_size,
                                    char const *account, size_t account_size, char const *extra,
                                    size_t extra_size) = 0;
    virtual void channelInviteDTMF(char const *channelID, size_t channelID_size,
                                   char const *phoneNum, size_t phoneNum_size, char const *dtmf,
                                   size_t dtmf_size) = 0;
    /* extra defaults to "": the vendor's samples answer with five arguments. */
    virtual void channelInviteAccept(char const *channelID, size_t channelID_size,
                                     char const *account, size_t account_size, uint32_t uid,
                                     char const *extra = "", size_t extra_size = 0) = 0;
    virtual void channelInviteRefuse(char const *channelID, size_t channelID_size,
                                     char const *account, size_t account_size, uint32_t uid,
                                     char const *extra = "", size_t extra_size = 0) = 0;
    virtual void channelInviteEnd(char const *channelID, size_t channelID_size,
                                  char const *account, size_t account_size, uint32_t uid) = 0;

    virtual int getStatus() = 0;
    virtual int getSdkVersion() = 0;
    /** Blocks until stop() or destroy() (returns at once on an SDK thread); optional. */
    virtual void start() = 0;
    virtual void stop() = 0;
    virtual void destroy() = 0;

    /* Obsolete interfaces, in the vendor header's (pointer, size) form ... */
    virtual void messageDTMFSend(uint32_t uid, char const *msg, size_t msg_size,
                                 char const *msgID, size_t msgID_size) = 0;
    virtual void channelInvitePhone(char const *channelID, size_t channelID_size,
                                    char const *phoneNum, size_t phoneNum_size,
                                    uint32_t uid = 0) = 0;
    virtual void channelInvitePhone2(char const *channelID, size_t channelID_size,
                                     char const *phoneNum, size_t phoneNum_size,
                                     char const *sourcesNum, size_t sourcesNum_size) = 0;
    virtual void channelInvitePhone3(char const *channelID, size_t channelID_size,
                                     char const *phoneNum, size_t phoneNum_size,
                                     char const *sourcesNum, size_t sourcesNum_size,
                                     char const *extra, size_t extra_size) = 0;
    /* ... and in the Linux documentation's std::string form. */
    virtual void messageDTMFSend(uint32_t uid, std::string msg, std::string msgID) = 0;
    virtual void channelInvitePhone(std::string channelID, std::string phoneNum,
                                    uint32_t uid = 0) = 0;
    virtual void channelInvitePhone2(std::string channelID, std::string phoneNum,
                                     std::string sourcesNum) = 0;
    virtual void channelInvitePhone3(std::string channelID, std::string phoneNum,
                                     std::string sourcesNum, std::string extra) = 0;
    virtual bool isOnline() = 0;
};

} /* namespace agora_sdk_cpp */

/** The Windows SDK's API (Signaling SDK for Windows v1.4.0); the same behaviour. */
namespace agora_sdk_win {

typedef enum { BECKON_SIG_CODES(BECKON_SIG_CPP_CODE_) } AGORA_E_CODE;

/** getStatus(). */
enum {
    LOGIN_STATE_NOT_LOGIN = 0,
    LOGIN_STATE_LOGINING = 1,
    LOGIN_STATE_LOGINED = 2,
    LOGIN_STATE_RECONNECTING = 3
};

/** As agora_sdk_cpp::ICallBack. */
class ICallBack {
  public:
    virtual ~ICallBack() {}
    virtual void onReconnecting(uint32_t /*nretry*/) {}
    virtual void onReconnected(int /*fd*/) {}
    virtual void onLoginSuccess(uint32_t /*uid*/, int /*fd*/) {}
    virtual void onLogout(int /*ecode*/) {}
    virtual void onLoginFailed(int /*ecode*/) {}
    virtual void onChannelJoined(char const * /*channelID*/, size_t /*channelID_size*/) {}
    virtual void onChannelJoinFailed(char const * /*channelID*/, size_t /*channelID_size*/,
                                     int /*ecode*/) {}
    virtual void onChannelLeaved(char const * /*channelID*/, size_t /*channelID_size*/,
                                 int /*ecode*/) {}
    virtual void onChannelUserJoined(char const * /*account*/, size_t /*account_size*/,
                                     uint32_t /*uid*/) {}
    virtual void onChannelUserLeaved(char const * /*account*/, size_t /*account_size*/,
                                     uint32_t /*uid*/) {}
    virtual void onChannelUserList(int /*n*/, char ** /*accounts*/, uint32_t * /*uids*/) {}
    virtual void onChannelQueryUserNumResult(char const * /*channelID*/, size_t /*channelID_size*/,
                                             int /*ecode*/, int /*num*/) {}
    virtual void onChannelQueryUserIsIn(char const * /*channelID*/, size_t /*channelID_size*/,
                                        char const * /*account*/, size_t /*account_size*/,
                                        int /*isIn*/) {}
    virtual void onChannelAttrUpdated(char const * /*channelID*/, size_t /*channelID_size*/,
                                      char const * /*name*/, size_t /*name_size*/,
                                      char const * /*value*/, size_t /*value_size*/,
                                      char const * /*type*/, size_t /*type_size*/) {}
    virtual void onInviteReceived(char const * /*channelID*/, size_t /*channelID_size*/,
                                  char const * /*account*/, size_t /*account_size*/,
                                  uint32_t /*uid*/, char const * /*extra*/,
                                  size_t /*extra_size*/) {}
    virtual void onInviteReceivedByPeer(char const * /*channelID*/, size_t /*channelID_size*/,
                                        char const * /*account*/, size_t /*account_size*/,
                                        uint32_t /*uid*/) {}
    virtual void onInviteAcceptedByPeer(char const * /*channelID*/, size_t /*channelID_size*/,
                                        char const * /*account*/, size_t /*account_size*/,
                                        uint32_t /*uid*/, char const * /*extra*/,
                                        size_t /*extra_size*/) {}
    virtual void onInviteRefusedByPeer(char const * /*channelID*/, size_t /*channelID_size*/,
                                       char const * /*account*/, size_t /*account_size*/,
                                       uint32_t /*uid*/, char const * /*extra*/,
                                       size_t /*extra_size*/) {}
    virtual void onInviteFailed(char const * /*channelID*/, size_t /*channelID_size*/,
                                char const * /*account*/, size_t /*account_size*/, uint32_t /*uid*/,
                                int /*ecode*/, char const * /*extra*/, size_t /*extra_size*/) {}
    virtual void onInviteEndByPeer(char const * /*channelID*/, size_t /*channelID_size*/,
                                   char const * /*account*/, size_t /*account_size*/,
                                   uint32_t /*uid*/, char const * /*extra*/,
                                   size_t /*extra_size*/) {}
    virtual void onInviteEndByMyself(char const * /*channelID*/, size_t /*channelID_size*/,
                                     char const * /*account*/, size_t /*account_size*/,
                                     uint32_t /*uid*/) {}
    virtual void onInviteMsg(char const * /*channelID*/, size_t /*channelID_size*/,
                             char const * /*account*/, size_t /*account_size*/, uint32_t /*uid*/,
                             char const * /*msgType*/, size_t /*msgType_size*/,
                             char const * /*msgData*/, size_t /*msgData_size*/,
                             char const * /*extra*/, size_t /*extra_size*/) {}
    virtual void onMessageSendError(char const * /*messageID*/, size_t /*messageID_size*/,
                                    int /*ecode*/) {}
    /** Never called by Beckon. */
    virtual void onMessageSendProgress(char const * /*account*/, size_t /*account_size*/,
                                       char const * /*messageID*/, size_t /*messageID_size*/,
                                       char const * /*type*/, size_t /*type_size*/,
                                       char const * /*info*/, size_t /*info_size*/) {}
    virtual void onMessageSendSuccess(char const * /*messageID*/, size_t /*messageID_size*/) {}
    /** Never called by Beckon. */
    virtual void onMessageAppReceived(char const * /*msg*/, size_t /*msg_size*/) {}
    virtual void onMessageInstantReceive(char const * /*account*/, size_t /*account_size*/,
                                         uint32_t /*uid*/, char const * /*msg*/,
                                         size_t /*msg_size*/) {}
    virtual void onMessageChannelReceive(char const * /*channelID*/, size_t /*channelID_size*/,
                                         char const * /*account*/, size_t /*account_size*/,
                                         uint32_t /*uid*/, char const * /*msg*/,
                                         size_t /*msg_size*/) {}
    virtual void onLog(char const * /*txt*/, size_t /*txt_size*/) {}
    virtual void onInvokeRet(char const * /*callID*/, size_t /*callID_size*/, char const * /*err*/,
                             size_t /*err_size*/, char const * /*resp*/, size_t /*resp_size*/) {}
    /** Never called by Beckon. */
    virtual void onMsg(char const * /*from*/, size_t /*from_size*/, char const * /*t*/,
                       size_t /*t_size*/, char const * /*msg*/, size_t /*msg_size*/) {}
    virtual void onUserAttrResult(char const * /*account*/, size_t /*account_size*/,
                                  char const * /*name*/, size_t /*name_size*/,
                                  char const * /*value*/,
                                  size_t /*value_size*/) {}
    virtual void onUserAttrAllResult(char const * /*account*/, size_t /*account_size*/,
                                     char const * /*value*/, size_t /*value_size*/) {}
    virtual void onError(char const * /*name*/, size_t /*name_size*/, int /*ecode*/,
                         char const * /*desc*/, size_t /*desc_size*/) {}
    virtual void onQueryUserStatusResult(char const * /*name*/, size_t /*name_size*/,
                                         char const * /*status*/, size_t /*status_size*/) {}
    /** Never called by Beckon. */
    virtual void onDbg(char const * /*a*/, size_t /*a_size*/, char const * /*b*/,
                       size_t /*b_size*/) {}
    /** Never called by Beckon. */
    virtual void onBCCall_result(char const * /*reason*/, size_t /*reason_size*/,
                                 char const * /*json_ret*/, size_t /*json_ret_size*/,
                                 char const * /*callID*/, size_t /*callID_size*/) {}
};

/** As agora_sdk_cpp::IAgoraAPI, with the obsolete interfaces in (pointer, size) form only. */
class IAgoraAPI {
  public:
    virtual void callbackSet(ICallBack *handler) = 0;
    virtual ICallBack *callbackGet() = 0;

    virtual void login(char const *appId, size_t appId_size, char const *account,
                       size_t account_size, char const *token, size_t token_size, uint32_t uid,
                       char const *deviceID, size_t deviceID_size) = 0;
    virtual void login2(char const *appId, size_t appId_size, char const *account,
                        size_t account_size, char const *token, size_t token_size, uint32_t uid,
                        char const *deviceID, size_t deviceID_size, int retry_time_in_s,
                        int retry_count) = 0;
    virtual void logout() = 0;
    virtual void queryUserStatus(char const *account, size_t account_size) = 0;
    virtual void setAttr(char const *name, size_t name_size, char const *value,
                         size_t value_size) = 0;
    virtual void getAttr(char const *name, size_t name_size) = 0;
    virtual void getAttrAll() = 0;
    virtual void getUserAttr(char const *account, size_t account_size, char const *name,
                             size_t name_size) = 0;
    virtual void getUserAttrAll(char const *account, size_t account_size) = 0;
    virtual void invoke(char const *name, size_t name_size, char const *req, size_t req_size,
                        char const *callID, size_t callID_size) = 0;
    virtual void messageInstantSend(char const *account, size_t account_size, uint32_t uid,
                                    char const *msg, size_t msg_size, char const *msgID,
                                    size_t msgID_size) = 0;

    virtual void channelJoin(char const *channelID, size_t channelID_size) = 0;
    virtual void channelLeave(char const *channelID, size_t channelID_size) = 0;
    virtual void channelQueryUserNum(char const *channelID, size_t channelID_size) = 0;
    virtual void channelQueryUserIsIn(char const *channelID, size_t channelID_size,
                                      char const *account, size_t account_size) = 0;
    virtual void channelSetAttr(char const *channelID, size_t channelID_size, char const *name,
                                size_t name_size, char const *value, size_t value_size) = 0;
    virtual void channelDelAttr(char const *channelID, size_t channelID_size, char const *name,
                                size_t name_size) = 0;
    virtual void channelClearAttr(char const *channelID, size_t channelID_size) = 0;
    virtual void messageChannelSend(char const *channelID, size_t channelID_size,
                                    char const *msg, size_t msg_size, char const *msgID,
                                    size_t msgID_size) = 0;
    virtual void messageChannelSendForce(char const *channelID, size_t channelID_size,
                                         char const *msg, size_t msg_size, char const *msgID,
                                         size_t msgID_size) = 0;

    virtual void channelInviteUser(char const *channelID, size_t channelID_size,
                                   char const *account, size_t account_size,
                                   uint32_t uid = 0) = 0;
    virtual void channelInviteUser2(char const *channelID, size_t channelID_size,
                                    char const *account, size_t account_size, char const *extra,
                                    size_t extra_size) = 0;
    virtual void channelInviteDTMF(char const *channelID, size_t channelID_size,
                                   char const *phoneNum, size_t phoneNum_size, char const *dtmf,
                                   size_t dtmf_size) = 0;
    virtual void channelInviteAccept(char const *channelID, size_t channelID_size,
                                     char const *account, size_t account_size, uint32_t uid,
                                     char const *extra = "", size_t extra_size = 0) = 0;
    virtual void channelInviteRefuse(char const *channelID, size_t channelID_size,
                                     char const *account, size_t account_size, uint32_t uid,
                                     char const *extra = "", size_t extra_size = 0) = 0;
    virtual void channelInviteEnd(char const *channelID, size_t channelID_size,
                                  char const *account, size_t account_size, uint32_t uid) = 0;

    virtual int getStatus() = 0;
    virtual int getSdkVersion() = 0;
    virtual void start() = 0;
    virtual void stop() = 0;
    virtual void destroy() = 0;

    /* Obsolete interfaces. */
    virtual void messageDTMFSend(uint32_t uid, char const *msg, size_t msg_size,
                                 char const *msgID, size_t msgID_size) = 0;
    virtual void channelInvitePhone(char const *channelID, size_t channelID_size,
                                    char const *phoneNum, size_t phoneNum_size,
                                    uint32_t uid = 0) = 0;
    virtual void channelInvitePhone2(char const *channelID, size_t channelID_size,
                                     char const *phoneNum, size_t phoneNum_size,
                                     char const *sourcesNum, size_t sourcesNum_size) = 0;
    virtual void channelInvitePhone3(char const *channelID, size_t channelID_size,
                                     char const *phoneNum, size_t phoneNum_size,
                                     char const *sourcesNum, size_t sourcesNum_size,
                                     char const *extra, size_t extra_size) = 0;
    virtual bool isOnline() = 0;
};

} /* namespace agora_sdk_win */

#undef BECKON_SIG_CPP_CODE_

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

#endif /* __cplusplus */

#endif /* BECKON_AGORA_SIG_H */
