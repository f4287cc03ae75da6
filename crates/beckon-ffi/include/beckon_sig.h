/*
 * beckon_sig.h — the C API of Beckon's C and C++ SDK (libagorasig.so / libagorasig.a).
 *
 * The Signaling API of the Linux and Windows SDKs as plain functions over an opaque handle
 * (beckon_sig), with callbacks in a struct of function pointers that receive a `void *user`
 * (beckon_sig_callbacks). C99; it compiles as C++ too. C programs include this header or
 * agora_sig.h, which includes it and adds the C++ API of those SDKs.
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
 * docs/sdk-cpp.md in the Beckon repository maps every function and callback and lists what
 * differs from the SDKs this API comes from.
 */
#ifndef BECKON_SIG_H
#define BECKON_SIG_H

#ifdef __cplusplus
#include <cstddef>
#include <cstdint>
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
#endif

#endif /* BECKON_SIG_H */
