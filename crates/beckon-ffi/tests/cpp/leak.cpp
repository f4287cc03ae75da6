// create / login / logout / destroy, 1,000 times (argv[1] to change), against a real server.
//
// Built plainly, it measures the heap in use (mallinfo2) after a warm-up and at the end, and
// fails if it grew by more than MAX_BYTES_PER_CYCLE a cycle: the only thing a cycle may keep
// is the destroyed instance's tombstone (its handle and C++ object, a few dozen bytes, kept so
// that a stale pointer stays harmless). Built with -fsanitize=address, LeakSanitizer checks at
// exit that nothing is lost (tombstones are reachable, as they should be). Under valgrind
// (which replaces malloc, so mallinfo2 reads 0) memcheck does the counting.

#include "support.h"

#include <malloc.h>

#define L_(lit) lit, sizeof(lit) - 1

using namespace agora_sdk_cpp;

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static const size_t MAX_BYTES_PER_CYCLE = 512;
static const int WARMUP = 50;

static void cycle(int i) {
    IAgoraAPI *api = createAgoraSDKInstanceCPP();
    CHECK(api != nullptr);
    t::Recorder<ICallBack> *rec = new t::Recorder<ICallBack>;
    api->callbackSet(rec);
    std::string account = "leak-" + std::to_string(i % 7);
    api->login(L_("cpp-leak"), account.data(), account.size(), L_("_no_need_token"), 0, nullptr,
               0);
    rec->wait("onLoginSuccess|");
    api->logout();
    rec->wait("onLogout|101");
    api->destroy();
    delete rec;
}

static size_t heap_in_use() {
#if defined(UNDER_ASAN)
    return 0;
#else
    return mallinfo2().uordblks;
#endif
}

int main(int argc, char **argv) {
    int cycles = argc > 1 ? std::atoi(argv[1]) : 1000;
    try {
        for (int i = 0; i < WARMUP; i++) cycle(i);
        size_t before = heap_in_use();
        auto start = std::chrono::steady_clock::now();
        for (int i = WARMUP; i < cycles; i++) cycle(i);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        size_t after = heap_in_use();
        int measured = cycles - WARMUP;
        std::cout << cycles << " cycles of create/login/logout/destroy, " << secs / measured * 1e3
                  << " ms each" << std::endl;
#if !defined(UNDER_ASAN)
        if (before == 0 && after == 0) {
            std::cout << "the heap cannot be measured here (valgrind?): memcheck counts leaks"
                      << std::endl;
            std::cout << "ok" << std::endl;
            return 0;
        }
        long growth = static_cast<long>(after) - static_cast<long>(before);
        double per_cycle = static_cast<double>(growth) / measured;
        std::cout << "heap in use grew by " << growth << " bytes over " << measured
                  << " cycles: " << per_cycle << " bytes per cycle (limit " << MAX_BYTES_PER_CYCLE
                  << ")" << std::endl;
        if (per_cycle > static_cast<double>(MAX_BYTES_PER_CYCLE)) {
            std::cout << "FAIL the heap grows per cycle" << std::endl;
            return 1;
        }
#else
        (void)before;
        (void)after;
        std::cout << "LeakSanitizer checks at exit" << std::endl;
#endif
    } catch (const t::Failure &f) {
        std::cout << "FAIL " << f.what << std::endl;
        return 1;
    }
    {
        std::lock_guard<std::mutex> g(t::async_mutex());
        if (!t::async_failures().empty()) {
            std::cout << "FAIL " << t::async_failures()[0] << std::endl;
            return 1;
        }
    }
    std::cout << "ok" << std::endl;
    return 0;
}
