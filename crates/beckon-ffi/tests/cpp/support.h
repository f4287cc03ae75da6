// Test support for the C++ suites: checks that abort a test, a recording ICallBack that can
// be waited on, and a TCP proxy that can cut its connections. Plain C++11 and POSIX.
#ifndef BECKON_TEST_SUPPORT_H
#define BECKON_TEST_SUPPORT_H

#include "agora_sig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace t {

// ---- checks -------------------------------------------------------------------------------------

struct Failure {
    std::string what;
};

inline void fail(const char *file, int line, const std::string &what) {
    std::ostringstream os;
    os << file << ":" << line << ": " << what;
    throw Failure{os.str()};
}

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (!(cond)) t::fail(__FILE__, __LINE__, "CHECK(" #cond ") failed");                      \
    } while (0)

#define CHECK_EQ(a, b)                                                                            \
    do {                                                                                          \
        auto va_ = (a);                                                                           \
        auto vb_ = (b);                                                                           \
        if (!(va_ == vb_)) {                                                                      \
            std::ostringstream os_;                                                               \
            os_ << "CHECK_EQ(" #a ", " #b ") failed: " << va_ << " != " << vb_;                   \
            t::fail(__FILE__, __LINE__, os_.str());                                               \
        }                                                                                         \
    } while (0)

// Problems found on an SDK thread (which must not throw into the library) wait here until the
// test's thread reports them.
inline std::mutex &async_mutex() {
    static std::mutex m;
    return m;
}
inline std::vector<std::string> &async_failures() {
    static std::vector<std::string> v;
    return v;
}
inline void async_fail(const std::string &what) {
    std::lock_guard<std::mutex> g(async_mutex());
    async_failures().push_back(what);
}

// Every callback name seen by any recorder, for the suite's coverage check.
inline std::mutex &seen_mutex() {
    static std::mutex m;
    return m;
}
inline std::set<std::string> &seen() {
    static std::set<std::string> s;
    return s;
}

inline std::string env(const char *name, const char *fallback = "") {
    const char *v = std::getenv(name);
    return v ? v : fallback;
}

inline void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// How long one expected callback may take: generous for debug builds under sanitizers.
const int WAIT_MS = 15000;

// ---- the recorder -------------------------------------------------------------------------------

// An ICallBack (of either namespace) that turns each callback into a line "name|arg|arg…",
// checks the library's promises on the way — strings NUL-terminated at ptr[size], every
// callback of one instance on one thread that is not the caller's, never two at once — and
// lets a test wait for a line.
template <class Base> class Recorder : public Base {
  public:
    // Called with each line, on the SDK thread, after it is recorded.
    std::function<void(const std::string &)> hook;

    // Waits for the first unconsumed line that starts with `prefix`, consumes and returns it.
    std::string wait(const std::string &prefix, int timeout_ms = WAIT_MS) {
        std::unique_lock<std::mutex> g(m_);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            for (size_t i = 0; i < lines_.size(); i++) {
                if (lines_[i].compare(0, prefix.size(), prefix) == 0) {
                    std::string l = lines_[i];
                    lines_.erase(lines_.begin() + static_cast<long>(i));
                    return l;
                }
            }
            if (cv_.wait_until(g, deadline) == std::cv_status::timeout) {
                std::ostringstream os;
                os << "no callback starting with \"" << prefix << "\" within " << timeout_ms
                   << " ms; unconsumed:";
                for (size_t i = 0; i < lines_.size(); i++) os << "\n    " << lines_[i];
                g.unlock();
                fail(__FILE__, __LINE__, os.str());
            }
        }
    }

    // Checks that no line starting with `prefix` arrives within `ms`.
    void none(const std::string &prefix, int ms) {
        sleep_ms(ms);
        std::lock_guard<std::mutex> g(m_);
        for (size_t i = 0; i < lines_.size(); i++)
            if (lines_[i].compare(0, prefix.size(), prefix) == 0)
                fail(__FILE__, __LINE__, "unexpected callback: " + lines_[i]);
    }

    // Waits for `n` lines starting with `prefix`, consuming them.
    std::vector<std::string> wait_n(const std::string &prefix, size_t n,
                                    int timeout_ms = WAIT_MS) {
        std::vector<std::string> out;
        while (out.size() < n) out.push_back(wait(prefix, timeout_ms));
        return out;
    }

    size_t count() {
        std::lock_guard<std::mutex> g(m_);
        return total_;
    }

    std::thread::id thread() {
        std::lock_guard<std::mutex> g(m_);
        return thread_;
    }

    void clear() {
        std::lock_guard<std::mutex> g(m_);
        lines_.clear();
    }

    // Each callback of the seed.
    void onReconnecting(uint32_t nretry) override { add("onReconnecting", num(nretry)); }
    void onReconnected(int fd) override { add("onReconnected", num(fd)); }
    void onLoginSuccess(uint32_t uid, int fd) override {
        add("onLoginSuccess", num(uid) + "|" + num(fd));
    }
    void onLogout(int ecode) override { add("onLogout", num(ecode)); }
    void onLoginFailed(int ecode) override { add("onLoginFailed", num(ecode)); }
    void onChannelJoined(char const *c, size_t cs) override { add("onChannelJoined", s(c, cs)); }
    void onChannelJoinFailed(char const *c, size_t cs, int ecode) override {
        add("onChannelJoinFailed", s(c, cs) + "|" + num(ecode));
    }
    void onChannelLeaved(char const *c, size_t cs, int ecode) override {
        add("onChannelLeaved", s(c, cs) + "|" + num(ecode));
    }
    void onChannelUserJoined(char const *a, size_t as, uint32_t uid) override {
        add("onChannelUserJoined", s(a, as) + "|" + num(uid));
    }
    void onChannelUserLeaved(char const *a, size_t as, uint32_t uid) override {
        add("onChannelUserLeaved", s(a, as) + "|" + num(uid));
    }
    void onChannelUserList(int n, char **accounts, uint32_t *uids) override {
        std::string l = num(n) + "|";
        for (int i = 0; i < n; i++) {
            if (i) l += ",";
            l += s(accounts[i], std::strlen(accounts[i])) + ":" + num(uids[i]);
        }
        add("onChannelUserList", l);
    }
    void onChannelQueryUserNumResult(char const *c, size_t cs, int ecode, int n) override {
        add("onChannelQueryUserNumResult", s(c, cs) + "|" + num(ecode) + "|" + num(n));
    }
    void onChannelQueryUserIsIn(char const *c, size_t cs, char const *a, size_t as,
                                int isIn) override {
        add("onChannelQueryUserIsIn", s(c, cs) + "|" + s(a, as) + "|" + num(isIn));
    }
    void onChannelAttrUpdated(char const *c, size_t cs, char const *n, size_t ns,
                              char const *v, size_t vs, char const *ty, size_t tys) override {
        add("onChannelAttrUpdated", s(c, cs) + "|" + s(n, ns) + "|" + s(v, vs) + "|" + s(ty, tys));
    }
    void onInviteReceived(char const *c, size_t cs, char const *a, size_t as, uint32_t uid,
                          char const *x, size_t xs) override {
        add("onInviteReceived", s(c, cs) + "|" + s(a, as) + "|" + num(uid) + "|" + s(x, xs));
    }
    void onInviteReceivedByPeer(char const *c, size_t cs, char const *a, size_t as,
                                uint32_t uid) override {
        add("onInviteReceivedByPeer", s(c, cs) + "|" + s(a, as) + "|" + num(uid));
    }
    void onInviteAcceptedByPeer(char const *c, size_t cs, char const *a, size_t as, uint32_t uid,
                                char const *x, size_t xs) override {
        add("onInviteAcceptedByPeer", s(c, cs) + "|" + s(a, as) + "|" + num(uid) + "|" + s(x, xs));
    }
    void onInviteRefusedByPeer(char const *c, size_t cs, char const *a, size_t as, uint32_t uid,
                               char const *x, size_t xs) override {
        add("onInviteRefusedByPeer", s(c, cs) + "|" + s(a, as) + "|" + num(uid) + "|" + s(x, xs));
    }
    void onInviteFailed(char const *c, size_t cs, char const *a, size_t as, uint32_t uid,
                        int ecode, char const *x, size_t xs) override {
        add("onInviteFailed",
            s(c, cs) + "|" + s(a, as) + "|" + num(uid) + "|" + num(ecode) + "|" + s(x, xs));
    }
    void onInviteEndByPeer(char const *c, size_t cs, char const *a, size_t as, uint32_t uid,
                           char const *x, size_t xs) override {
        add("onInviteEndByPeer", s(c, cs) + "|" + s(a, as) + "|" + num(uid) + "|" + s(x, xs));
    }
    void onInviteEndByMyself(char const *c, size_t cs, char const *a, size_t as,
                             uint32_t uid) override {
        add("onInviteEndByMyself", s(c, cs) + "|" + s(a, as) + "|" + num(uid));
    }
    void onInviteMsg(char const *c, size_t cs, char const *a, size_t as, uint32_t uid,
                     char const *ty, size_t tys, char const *d, size_t ds, char const *x,
                     size_t xs) override {
        add("onInviteMsg", s(c, cs) + "|" + s(a, as) + "|" + num(uid) + "|" + s(ty, tys) + "|" +
                               s(d, ds) + "|" + s(x, xs));
    }
    void onMessageSendError(char const *id, size_t ids, int ecode) override {
        add("onMessageSendError", s(id, ids) + "|" + num(ecode));
    }
    void onMessageSendSuccess(char const *id, size_t ids) override {
        add("onMessageSendSuccess", s(id, ids));
    }
    void onMessageInstantReceive(char const *a, size_t as, uint32_t uid, char const *m,
                                 size_t ms) override {
        add("onMessageInstantReceive", s(a, as) + "|" + num(uid) + "|" + s(m, ms));
    }
    void onMessageChannelReceive(char const *c, size_t cs, char const *a, size_t as, uint32_t uid,
                                 char const *m, size_t ms) override {
        add("onMessageChannelReceive", s(c, cs) + "|" + s(a, as) + "|" + num(uid) + "|" + s(m, ms));
    }
    void onLog(char const *txt, size_t n) override { add("onLog", s(txt, n)); }
    void onInvokeRet(char const *id, size_t ids, char const *err, size_t es, char const *resp,
                     size_t rs) override {
        add("onInvokeRet", s(id, ids) + "|" + s(err, es) + "|" + s(resp, rs));
    }
    void onUserAttrResult(char const *a, size_t as, char const *n, size_t ns, char const *v,
                          size_t vs) override {
        add("onUserAttrResult", s(a, as) + "|" + s(n, ns) + "|" + s(v, vs));
    }
    void onUserAttrAllResult(char const *a, size_t as, char const *v, size_t vs) override {
        add("onUserAttrAllResult", s(a, as) + "|" + s(v, vs));
    }
    void onError(char const *n, size_t ns, int ecode, char const *d, size_t ds) override {
        add("onError", s(n, ns) + "|" + num(ecode) + "|" + s(d, ds));
    }
    void onQueryUserStatusResult(char const *n, size_t ns, char const *st, size_t sts) override {
        add("onQueryUserStatusResult", s(n, ns) + "|" + s(st, sts));
    }

  private:
    template <class N> static std::string num(N n) {
        std::ostringstream os;
        os << n;
        return os.str();
    }

    // A string argument, checked: not NULL, NUL-terminated right after `n` bytes.
    static std::string s(char const *p, size_t n) {
        if (!p) {
            async_fail("a callback string is NULL");
            return "";
        }
        if (p[n] != '\0') async_fail("a callback string is not NUL-terminated at ptr[size]");
        return std::string(p, n);
    }

    void add(const char *name, const std::string &args) {
        if (inside_.fetch_add(1) != 0) async_fail(std::string("two callbacks at once: ") + name);
        std::string line = std::string(name) + "|" + args;
        {
            std::lock_guard<std::mutex> g(m_);
            std::thread::id me = std::this_thread::get_id();
            if (total_ == 0) {
                thread_ = me;
            } else if (thread_ != me) {
                async_fail(std::string("callbacks of one instance on two threads: ") + name);
            }
            lines_.push_back(line);
            total_++;
        }
        {
            std::lock_guard<std::mutex> g(seen_mutex());
            seen().insert(name);
        }
        cv_.notify_all();
        if (hook) hook(line);
        inside_.fetch_sub(1);
    }

    std::mutex m_;
    std::condition_variable cv_;
    std::vector<std::string> lines_;
    size_t total_ = 0;
    std::thread::id thread_;
    std::atomic<int> inside_{0};
};

// ---- a TCP proxy that can cut its connections ----------------------------------------------------

// Listens on 127.0.0.1 (a free port) and relays every connection to `upstream_port`; cut()
// closes every relayed connection at once, as a network failure would.
class Proxy {
  public:
    explicit Proxy(int upstream_port) : upstream_(upstream_port) {
        lfd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a = addr(0);
        if (::bind(lfd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || ::listen(lfd_, 16) != 0)
            fail(__FILE__, __LINE__, "proxy: cannot listen");
        socklen_t len = sizeof a;
        ::getsockname(lfd_, reinterpret_cast<sockaddr *>(&a), &len);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { run(); });
    }
    ~Proxy() {
        stop_ = true;
        thread_.join();
        cut();
        ::close(lfd_);
    }
    int port() const { return port_; }
    void cut() {
        std::lock_guard<std::mutex> g(m_);
        for (size_t i = 0; i < pairs_.size(); i++) {
            ::shutdown(pairs_[i].first, SHUT_RDWR);
            ::shutdown(pairs_[i].second, SHUT_RDWR);
        }
    }

  private:
    static sockaddr_in addr(int port) {
        sockaddr_in a;
        std::memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return a;
    }

    void run() {
        while (!stop_) {
            std::vector<pollfd> fds;
            pollfd l = {lfd_, POLLIN, 0};
            fds.push_back(l);
            {
                std::lock_guard<std::mutex> g(m_);
                for (size_t i = 0; i < pairs_.size(); i++) {
                    pollfd a = {pairs_[i].first, POLLIN, 0}, b = {pairs_[i].second, POLLIN, 0};
                    fds.push_back(a);
                    fds.push_back(b);
                }
            }
            if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
            std::lock_guard<std::mutex> g(m_);
            // Only this thread adds pairs, after the pumping: fds covers every pair.
            std::vector<std::pair<int, int> > keep;
            for (size_t i = 0; i < pairs_.size(); i++) {
                bool alive = pump(fds[1 + 2 * i], pairs_[i].second) &&
                             pump(fds[2 + 2 * i], pairs_[i].first);
                if (alive) {
                    keep.push_back(pairs_[i]);
                } else {
                    ::close(pairs_[i].first);
                    ::close(pairs_[i].second);
                }
            }
            pairs_.swap(keep);
            if (fds[0].revents & POLLIN) accept_one();
        }
    }

    void accept_one() {
        int c = ::accept(lfd_, 0, 0);
        if (c < 0) return;
        int u = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a = addr(upstream_);
        if (::connect(u, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
            ::close(c);
            ::close(u);
            return;
        }
        pairs_.push_back(std::make_pair(c, u)); // m_ is held by run()
    }

    // Moves what `from` has to `to`; false once either side is done.
    static bool pump(const pollfd &from, int to) {
        if (!(from.revents & (POLLIN | POLLHUP | POLLERR))) return true;
        char buf[65536];
        ssize_t n = ::read(from.fd, buf, sizeof buf);
        if (n <= 0) return false;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = ::send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
            if (w <= 0) return false;
            off += w;
        }
        return true;
    }

    int upstream_;
    int lfd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::mutex m_;
    std::vector<std::pair<int, int> > pairs_;
    std::thread thread_;
};

// The port of a "scheme://host:port[/path]" URL.
inline int url_port(const std::string &url) {
    size_t colon = url.rfind(':');
    return std::atoi(url.c_str() + colon + 1);
}

// ---- running tests ------------------------------------------------------------------------------

struct Test {
    const char *name;
    void (*run)();
};

// Runs the tests whose names contain argv[1] (all without it); returns the process's exit code.
inline int run_tests(const std::vector<Test> &tests, int argc, char **argv,
                     const std::function<bool()> &after_all) {
    std::string filter = argc > 1 ? argv[1] : "";
    int failed = 0, ran = 0;
    for (size_t i = 0; i < tests.size(); i++) {
        if (!filter.empty() && std::string(tests[i].name).find(filter) == std::string::npos)
            continue;
        ran++;
        auto start = std::chrono::steady_clock::now();
        std::string error;
        try {
            tests[i].run();
        } catch (const Failure &f) {
            error = f.what;
        } catch (const std::exception &e) {
            error = std::string("exception: ") + e.what();
        }
        {
            std::lock_guard<std::mutex> g(async_mutex());
            for (size_t k = 0; k < async_failures().size(); k++)
                error += (error.empty() ? "" : "\n") + async_failures()[k];
            async_failures().clear();
        }
        long ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - start)
                                        .count());
        if (error.empty()) {
            std::cout << "ok   " << tests[i].name << " (" << ms << " ms)" << std::endl;
        } else {
            failed++;
            std::cout << "FAIL " << tests[i].name << " (" << ms << " ms)\n  " << error << std::endl;
        }
    }
    if (filter.empty() && after_all && !after_all()) failed++;
    std::cout << ran - failed << "/" << ran << " passed" << std::endl;
    return failed == 0 ? 0 : 1;
}

} // namespace t

#endif
