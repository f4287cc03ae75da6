/*
 * agora_sig.h — Beckon's C and C++ SDK.
 *
 * Two APIs over one library (libagorasig.so / libagorasig.a):
 *
 *  - C++: the Signaling API of the Linux SDK (namespace agora_sdk_cpp) and of the Windows SDK
 *    (namespace agora_sdk_win), class for class and parameter for parameter — IAgoraAPI,
 *    ICallBack, the factories getAgoraSDKInstanceCPP / createAgoraSDKInstanceCPP and
 *    getAgoraSDKInstanceWin / createAgoraSDKInstanceWin — so code written for those SDKs
 *    compiles and runs unchanged. Needs C++11.
 *  - C: the same API as plain functions over an opaque handle (beckon_sig), with callbacks in a
 *    struct of function pointers that receive a `void *user` (beckon_sig_callbacks). C99.
 *
 * The C++ classes are implemented inline, in the headers, on top of the C API: the library
 * exports only C symbols, so it does not depend on the C++ compiler, standard library or ABI
 * of the application.
 *
 * Files. An application includes this header only; it includes the other two:
 *  - beckon_sig.h: the C API (which C programs may also include alone), the error codes, and
 *    how an instance finds its server, runs its callbacks and is destroyed — all of which
 *    holds for the C++ API too;
 *  - beckon/agora_sig_impl.h: the inline implementation of the C++ API (not part of the API).
 *
 * docs/sdk-cpp.md in the Beckon repository maps every method and callback and lists what
 * differs from the SDKs this API comes from.
 */
#ifndef BECKON_AGORA_SIG_H
#define BECKON_AGORA_SIG_H

#include "beckon_sig.h"

#ifdef __cplusplus
#include <string>

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

#include "beckon/agora_sig_impl.h"

#endif /* __cplusplus */

#endif /* BECKON_AGORA_SIG_H */
