// Counts heap allocations per thread in a process it is preloaded into (LD_PRELOAD), for allocations per request:
// on SIGUSR2 it appends one line per thread, "<tid> <allocations> <bytes>", to the file named by MALLOCCOUNT_OUT,
// then "end". Valgrind 3.19 cannot load the Swift 6.3 runtime and this VM has no hardware counters, so this is how
// calgate's benchmark counts allocations. Built by Benchmarks/costs.py (cc -O2 -shared -fPIC).
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define SLOTS 1024
static _Atomic long slot_tid[SLOTS];
static _Atomic unsigned long slot_count[SLOTS];
static _Atomic unsigned long slot_bytes[SLOTS];
static _Atomic int next_slot;
static __thread int my_slot = -1;

static inline void count(size_t size) {
    if (my_slot < 0) {
        int s = atomic_fetch_add(&next_slot, 1);
        if (s >= SLOTS) s = SLOTS - 1;  // overflow threads share the last slot
        atomic_store(&slot_tid[s], (long)syscall(SYS_gettid));
        my_slot = s;
    }
    atomic_fetch_add_explicit(&slot_count[my_slot], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&slot_bytes[my_slot], size, memory_order_relaxed);
}

void *malloc(size_t size) { count(size); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count(n * size); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { count(size); return __libc_realloc(p, size); }
void *memalign(size_t align, size_t size) { count(size); return __libc_memalign(align, size); }
void *aligned_alloc(size_t align, size_t size) { count(size); return __libc_memalign(align, size); }
int posix_memalign(void **out, size_t align, size_t size) {
    count(size);
    void *p = __libc_memalign(align, size);
    if (!p) return 12;
    *out = p;
    return 0;
}

static char *put(char *at, unsigned long value) {
    char digits[24];
    int n = 0;
    do { digits[n++] = (char)('0' + value % 10); value /= 10; } while (value);
    while (n) *at++ = digits[--n];
    return at;
}

static void dump(int sig) {
    (void)sig;
    const char *path = getenv("MALLOCCOUNT_OUT");
    if (!path) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return;
    char line[96];
    int used = atomic_load(&next_slot);
    if (used > SLOTS) used = SLOTS;
    for (int s = 0; s < used; s++) {
        char *at = put(line, (unsigned long)atomic_load(&slot_tid[s]));
        *at++ = ' ';
        at = put(at, atomic_load(&slot_count[s]));
        *at++ = ' ';
        at = put(at, atomic_load(&slot_bytes[s]));
        *at++ = '\n';
        (void)!write(fd, line, (size_t)(at - line));
    }
    (void)!write(fd, "end\n", 4);
    close(fd);
}

__attribute__((constructor)) static void install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = dump;
    action.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &action, NULL);
}
