/*
 * The C API: two instances in one process log in, one sends the other a message, and the
 * receiver answers. Exits 0 once the answer has arrived, 1 on any failure or after 20 s.
 *
 *   gcc -std=c99 hello.c -Iinclude -Llibs -lagorasig -lpthread -o hello
 *   BECKON_URL=tcp://127.0.0.1:7400 LD_LIBRARY_PATH=libs ./hello
 */
#define _POSIX_C_SOURCE 200809L

#include "agora_sig.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* What each instance's callbacks see; they run on that instance's SDK thread. */
struct peer {
    const char *account;
    beckon_sig *sig;
    int logged_in;
    int failed;
    int answered;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

static void on_login_success(void *user, uint32_t uid, int fd) {
    struct peer *p = user;
    (void)fd;
    printf("%s logged in (uid %u)\n", p->account, (unsigned)uid);
    pthread_mutex_lock(&lock);
    p->logged_in = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_login_failed(void *user, int ecode) {
    struct peer *p = user;
    printf("%s could not log in: %d\n", p->account, ecode);
    pthread_mutex_lock(&lock);
    p->failed = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_error(void *user, const char *name, size_t name_size, int ecode, const char *desc,
                     size_t desc_size) {
    struct peer *p = user;
    (void)name_size;
    (void)desc_size;
    printf("%s: %s failed with %d: %s\n", p->account, name, ecode, desc);
}

/* Strings are NUL-terminated at ptr[size], so they print as they are. */
static void on_message(void *user, const char *from, size_t from_size, uint32_t uid,
                       const char *msg, size_t msg_size) {
    struct peer *p = user;
    static const char reply[] = "hello to you";
    (void)from_size;
    (void)uid;
    printf("%s got \"%s\" (%zu bytes) from %s\n", p->account, msg, msg_size, from);
    if (strcmp(msg, reply) != 0) {
        /* Calling the API from a callback is allowed. */
        beckon_sig_message_instant_send(p->sig, from, from_size, 0, reply, sizeof reply - 1, "",
                                        0);
        return;
    }
    pthread_mutex_lock(&lock);
    p->answered = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* Waits until *flag is set (or *failed), for at most 20 s in all. */
static int wait_for(const int *flag, const int *failed, const struct timespec *deadline) {
    int ok;
    pthread_mutex_lock(&lock);
    while (!*flag && !*failed) {
        if (pthread_cond_timedwait(&changed, &lock, deadline) != 0) break;
    }
    ok = *flag;
    pthread_mutex_unlock(&lock);
    return ok;
}

static int login(struct peer *p, const beckon_sig_callbacks *cbs) {
    static const char app[] = "c-example";
    static const char token[] = "_no_need_token";
    p->sig = beckon_sig_create();
    if (!p->sig) return 0;
    beckon_sig_set_callbacks(p->sig, cbs, sizeof *cbs, p);
    beckon_sig_login(p->sig, app, sizeof app - 1, p->account, strlen(p->account), token,
                     sizeof token - 1, 0, NULL, 0);
    return 1;
}

int main(void) {
    struct peer alice = {"alice-c", NULL, 0, 0, 0};
    struct peer bob = {"bob-c", NULL, 0, 0, 0};
    static const char hello[] = "hello from C";
    beckon_sig_callbacks cbs;
    struct timespec deadline;
    int ok;

    memset(&cbs, 0, sizeof cbs);
    cbs.on_login_success = on_login_success;
    cbs.on_login_failed = on_login_failed;
    cbs.on_error = on_error;
    cbs.on_message_instant_receive = on_message;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;

    ok = login(&alice, &cbs) && login(&bob, &cbs) &&
         wait_for(&alice.logged_in, &alice.failed, &deadline) &&
         wait_for(&bob.logged_in, &bob.failed, &deadline);
    if (ok) {
        beckon_sig_message_instant_send(alice.sig, bob.account, strlen(bob.account), 0, hello,
                                        sizeof hello - 1, "", 0);
        ok = wait_for(&alice.answered, &alice.failed, &deadline);
    }
    /* destroy logs out; no callback runs after it returns. */
    beckon_sig_destroy(alice.sig);
    beckon_sig_destroy(bob.sig);
    printf("%s\n", ok ? "done" : "FAILED");
    return ok ? 0 : 1;
}
