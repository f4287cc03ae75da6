// p2p round trip through the C++ API, measured as benches/rtt.rs measures the Rust SDK's.
//
// Two instances log in to the server BECKON_URL names; `a` sends a 256-byte p2p message to
// `b`, whose callback sends it straight back; the time from `a`'s send to the start of `a`'s
// callback for the answer — where application code first sees it, as the Rust loop's clock
// stops where its code first sees the event — is one round trip. Round trips run one at a time (latency, not throughput),
// after 200 warm-up ones. `cargo xtask cpp-rtt` runs this beside the same loop written with
// the Rust SDK (crates/beckon-ffi/examples/rtt_sdk.rs), against one server.
//
//   rtt [rounds]     prints: rtt <rounds> <median µs> <p99 µs> <p999 µs> <max µs>

#include "agora_sig.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

using namespace agora_sdk_cpp;
typedef std::chrono::steady_clock Clock;

static const int WARMUP = 200;
static const size_t PAYLOAD = 256;
static const std::string APP = "rtt-cpp";
static const std::string TOKEN = "_no_need_token";

// Counts logins and received messages; the main thread waits on it.
class Waiter : public ICallBack {
  public:
    void onLoginSuccess(uint32_t, int) override { bump(logins); }
    void onLoginFailed(int ecode) override { die("login failed", ecode); }
    void onMessageInstantReceive(char const *, size_t, uint32_t, char const *, size_t) override {
        Clock::time_point now = Clock::now();
        {
            std::lock_guard<std::mutex> g(m);
            last = now;
        }
        bump(received);
    }
    void onMessageSendError(char const *, size_t, int ecode) override { die("send failed", ecode); }

    void wait(const long &counter, long target) {
        std::unique_lock<std::mutex> g(m);
        while (counter < target) cv.wait(g);
    }

    long logins = 0, received = 0;
    Clock::time_point last; // when the latest message reached the callback

  private:
    void bump(long &counter) {
        {
            std::lock_guard<std::mutex> g(m);
            counter++;
        }
        cv.notify_one();
    }
    static void die(const char *what, int ecode) {
        std::cerr << "rtt: " << what << ": " << ecode << std::endl;
        std::exit(1);
    }
    std::mutex m;
    std::condition_variable cv;
};

// Sends every message back to its sender, from the SDK thread.
class Echo : public Waiter {
  public:
    IAgoraAPI *self = nullptr;
    void onMessageInstantReceive(char const *account, size_t account_size, uint32_t,
                                 char const *msg, size_t msg_size) override {
        self->messageInstantSend(account, account_size, 0, msg, msg_size, "", 0);
    }
};

static void login(IAgoraAPI *api, Waiter &w, const std::string &account) {
    api->callbackSet(&w);
    api->login(APP.data(), APP.size(), account.data(), account.size(), TOKEN.data(),
               TOKEN.size(), 0, nullptr, 0);
    w.wait(w.logins, 1);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? std::atoi(argv[1]) : 5000;
    IAgoraAPI *a = createAgoraSDKInstanceCPP(), *b = createAgoraSDKInstanceCPP();
    Waiter wa;
    Echo eb;
    eb.self = b;
    login(a, wa, "rtt-a");
    login(b, eb, "rtt-b");

    const std::string to = "rtt-b", msg(PAYLOAD, 'x');
    std::vector<double> us;
    us.reserve(static_cast<size_t>(rounds));
    for (int i = 0; i < WARMUP + rounds; i++) {
        Clock::time_point start = Clock::now();
        a->messageInstantSend(to.data(), to.size(), 0, msg.data(), msg.size(), "", 0);
        wa.wait(wa.received, i + 1);
        double took = std::chrono::duration<double, std::micro>(wa.last - start).count();
        if (i >= WARMUP) us.push_back(took);
    }
    a->destroy();
    b->destroy();

    std::sort(us.begin(), us.end());
    auto q = [&us](double p) {
        size_t i = static_cast<size_t>(static_cast<double>(us.size()) * p + 0.999999);
        return us[std::min(std::max<size_t>(i, 1), us.size()) - 1];
    };
    std::cout << "rtt " << rounds << " " << q(0.5) << " " << q(0.99) << " " << q(0.999) << " "
              << us.back() << std::endl;
    return 0;
}
