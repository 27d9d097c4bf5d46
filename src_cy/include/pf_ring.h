/* pf_ring.h: single-producer single-consumer ring of int16 samples.
 *
 * One producer thread and one consumer thread (each may be any thread, one at
 * a time). The data path takes no lock: two 64-bit indices that only grow,
 * masked by capacity - 1, published with acquire/release atomics. A mutex and
 * condition variable exist only for pf_ring_wait, and the producer touches
 * them only while a consumer is waiting.
 *
 * Overflow policy, applied by the producer:
 *   PF_DROP_NEWEST  store what fits, lose the rest of this write;
 *   PF_DROP_OLDEST  make room by advancing the read index past the oldest
 *                   unread samples (with a CAS, counting exactly what it
 *                   skipped); a write longer than the capacity keeps its
 *                   newest `capacity` samples. While the consumer is copying
 *                   the oldest samples, a write keeps what fits instead.
 * Every lost sample is counted in pf_ring_overruns.
 *
 * Under drop-oldest the producer moves the read index, so the two must never
 * touch the same slots at once. The consumer claims each read by setting
 * PF_RING_READING in the read index with a CAS from the index it will copy
 * from, and clears it (with the index advanced) when its copy is done. A
 * producer that needs room while the flag is set cannot move the index: for
 * that one write it keeps what fits and counts the rest, as drop-newest
 * would. So every slot is written or read by one thread at a time, with
 * release/acquire on the index between them: no data race, no torn read.
 *
 * All functions are static inline and never allocate except pf_ring_init; all
 * may run without the GIL. pf_ring_wait needs POSIX threads.
 */
#ifndef PF_RING_H
#define PF_RING_H

/* The Python headers, included first by any extension, already ask for these. */
#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PF_DROP_OLDEST = 0, PF_DROP_NEWEST = 1 };

/* The consumer's claim on the read index (indices never reach 2**63). */
#define PF_RING_READING ((uint64_t)1 << 63)

/* Test hook: runs when a read's claim fails because the producer moved the
 * read index first, and the read starts again from the new index. */
#ifndef PF_RING_ON_RETRY
#define PF_RING_ON_RETRY() ((void)0)
#endif

/* Distance kept between fields written by different threads: two cache lines,
 * as adjacent-line prefetchers fetch lines in pairs. Padding rather than
 * alignas, because the struct is embedded in objects allocated with malloc. */
#define PF_RING_PAD 128

typedef struct pf_ring {
    char pad0_[PF_RING_PAD];
    /* Set by pf_ring_init, read-only afterwards. */
    int16_t *buf;
    size_t capacity;
    uint64_t mask;
    int policy;
    char pad1_[PF_RING_PAD];
    /* Read index, with PF_RING_READING while the consumer copies: written by
     * the consumer, and by the producer when it drops the oldest samples. */
    _Atomic uint64_t head;
    char pad2_[PF_RING_PAD];
    /* Written by the producer only. */
    _Atomic uint64_t tail;
    _Atomic uint64_t written;
    _Atomic uint64_t overruns;
    char pad3_[PF_RING_PAD];
    /* Slow path: blocking wait and end of stream. */
    _Atomic unsigned waiters;
    _Atomic size_t wait_for;
    _Atomic int closed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char pad4_[PF_RING_PAD];
} pf_ring;

/* 0 ok, -1 out of memory (or no mutex/condvar). capacity must be a power of
 * two (the caller checks); policy PF_DROP_OLDEST or PF_DROP_NEWEST. The ring
 * must not be in use. A ring that is all zero bytes may be passed to
 * pf_ring_free. */
static inline int pf_ring_init(pf_ring *r, size_t capacity, int policy)
{
    memset(r, 0, sizeof *r);
    if (capacity == 0 || (capacity & (capacity - 1)) != 0 ||
        capacity > SIZE_MAX / sizeof(int16_t))
        return -1;
    int16_t *buf = (int16_t *)malloc(capacity * sizeof(int16_t));
    if (buf == NULL)
        return -1;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(buf);
        return -1;
    }
    pthread_condattr_t ca;
    int ok = pthread_condattr_init(&ca) == 0;
#if !defined(__APPLE__)
    if (ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0) {
        pthread_condattr_destroy(&ca);
        ok = 0;
    }
#endif
    if (ok) {
        ok = pthread_cond_init(&r->cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!ok) {
        pthread_mutex_destroy(&r->mu);
        free(buf);
        return -1;
    }
    r->capacity = capacity;
    r->mask = (uint64_t)capacity - 1;
    r->policy = policy == PF_DROP_NEWEST ? PF_DROP_NEWEST : PF_DROP_OLDEST;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->written, 0);
    atomic_init(&r->overruns, 0);
    atomic_init(&r->waiters, 0);
    atomic_init(&r->wait_for, 0);
    atomic_init(&r->closed, 0);
    r->buf = buf; /* last: marks the ring initialised for pf_ring_free */
    return 0;
}

/* Releases the buffer; a no-op on a zeroed or already freed ring. No thread
 * may be using the ring. */
static inline void pf_ring_free(pf_ring *r)
{
    if (r->buf == NULL)
        return;
    free(r->buf);
    r->buf = NULL;
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

static inline size_t pf_ring_capacity(const pf_ring *r) { return r->capacity; }
static inline int pf_ring_policy(const pf_ring *r) { return r->policy; }

/* Copy n <= capacity samples into the slots of indices at..at+n-1. */
static inline void pf__ring_put(pf_ring *r, uint64_t at, const int16_t *src, size_t n)
{
    size_t off = (size_t)(at & r->mask);
    size_t first = r->capacity - off;
    if (first > n)
        first = n;
    memcpy(r->buf + off, src, first * sizeof(int16_t));
    if (n > first)
        memcpy(r->buf, src + first, (n - first) * sizeof(int16_t));
}

static inline void pf__ring_get(const pf_ring *r, uint64_t at, int16_t *dst, size_t n)
{
    size_t off = (size_t)(at & r->mask);
    size_t first = r->capacity - off;
    if (first > n)
        first = n;
    memcpy(dst, r->buf + off, first * sizeof(int16_t));
    if (n > first)
        memcpy(dst + first, r->buf, (n - first) * sizeof(int16_t));
}

/* Wake a waiting consumer if one is registered and its wait is over. Called
 * by the producer after it published the tail. The seq_cst fence pairs
 * with the one in pf_ring_wait (store tail; fence; load waiters against
 * store waiters; fence; load tail): one side always sees the other. */
static inline void pf__ring_wake(pf_ring *r, uint64_t tail)
{
    atomic_thread_fence(memory_order_seq_cst);
    /* acquire: makes the waiter's wait_for, stored before it registered, visible */
    if (atomic_load_explicit(&r->waiters, memory_order_acquire) == 0)
        return;
    /* The waiting consumer is not reading, so only this producer moves head. */
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed) & ~PF_RING_READING;
    size_t want = atomic_load_explicit(&r->wait_for, memory_order_relaxed);
    if (tail - head < want)
        return;
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Producer only; never blocks. Returns the samples stored: under drop-newest
 * what fitted; under drop-oldest min(n, capacity), or what fitted if the
 * consumer was copying the oldest samples at that moment. */
static inline size_t pf_ring_write(pf_ring *r, const int16_t *src, size_t n)
{
    uint64_t wr = atomic_load_explicit(&r->written, memory_order_relaxed);
    atomic_store_explicit(&r->written, wr + n, memory_order_relaxed);
    if (n == 0)
        return 0;
    const size_t cap = r->capacity;
    uint64_t lost = 0;
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    /* acquire: the consumer's copies out of the slots we are about to reuse
     * happen before our stores into them */
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);

    if (r->policy == PF_DROP_NEWEST) {
        size_t room = cap - (size_t)(t - (h & ~PF_RING_READING));
        if (n > room) {
            lost = n - room;
            n = room;
        }
    } else {
        if (n > cap) {
            lost = n - cap;
            src += lost;
            n = cap;
        }
        /* need head >= t + n - cap; the consumer may advance it meanwhile */
        while (t + n - (h & ~PF_RING_READING) > cap) {
            if (h & PF_RING_READING) {
                /* The consumer is copying from head: leave it, keep what fits. */
                size_t room = cap - (size_t)(t - (h & ~PF_RING_READING));
                lost += n - room;
                n = room;
                break;
            }
            uint64_t need = t + n - cap;
            if (atomic_compare_exchange_weak_explicit(&r->head, &h, need,
                                                      memory_order_acq_rel,
                                                      memory_order_acquire)) {
                lost += need - h;
                break;
            }
        }
    }
    if (lost) {
        uint64_t o = atomic_load_explicit(&r->overruns, memory_order_relaxed);
        atomic_store_explicit(&r->overruns, o + lost, memory_order_relaxed);
    }
    if (n == 0)
        return 0;
    pf__ring_put(r, t, src, n);
    atomic_store_explicit(&r->tail, t + n, memory_order_release);
    pf__ring_wake(r, t + n);
    return n;
}

/* Consumer only; never blocks. Copies up to max samples, oldest first. */
static inline size_t pf_ring_read(pf_ring *r, int16_t *dst, size_t max)
{
    /* Only this consumer sets PF_RING_READING, and it is clear between reads. */
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    for (;;) {
        uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
        uint64_t avail = t - h;
        if (avail > r->capacity) {
            /* the producer moved head after we loaded it */
            h = atomic_load_explicit(&r->head, memory_order_acquire);
            continue;
        }
        size_t k = avail < max ? (size_t)avail : max;
        if (k == 0)
            return 0;
        /* Claim [h, h + k): from here the producer cannot move head, and it
         * only writes slots at or past t, outside what we copy. */
        if (!atomic_compare_exchange_strong_explicit(&r->head, &h, h | PF_RING_READING,
                                                     memory_order_acquire,
                                                     memory_order_acquire)) {
            PF_RING_ON_RETRY();   /* h now holds the producer's new head */
            continue;
        }
        pf__ring_get(r, h, dst, k);
        /* release: our copies out of the slots happen before the producer,
         * acquiring head, writes into them again */
        atomic_store_explicit(&r->head, h + k, memory_order_release);
        return k;
    }
}

/* Samples ready to read, at most capacity. Any thread (a snapshot). */
static inline size_t pf_ring_available(pf_ring *r)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire) & ~PF_RING_READING;
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t avail = t - h; /* head is loaded first, so t >= h */
    return avail > r->capacity ? r->capacity : (size_t)avail;
}

/* Exact count of samples lost to overflow. Any thread. */
static inline uint64_t pf_ring_overruns(pf_ring *r)
{
    return atomic_load_explicit(&r->overruns, memory_order_relaxed);
}

/* Samples offered to pf_ring_write, stored or lost. Any thread. */
static inline uint64_t pf_ring_written(pf_ring *r)
{
    return atomic_load_explicit(&r->written, memory_order_relaxed);
}

/* The read index: samples read plus samples dropped from the oldest end; it
 * only grows. Any thread (a snapshot). */
static inline uint64_t pf_ring_read_index(pf_ring *r)
{
    return atomic_load_explicit(&r->head, memory_order_acquire) & ~PF_RING_READING;
}

/* The write index: samples stored since creation (the read index of the next
 * sample written). Any thread (a snapshot). */
static inline uint64_t pf_ring_write_index(pf_ring *r)
{
    return atomic_load_explicit(&r->tail, memory_order_acquire);
}

static inline int pf_ring_closed(pf_ring *r)
{
    return atomic_load_explicit(&r->closed, memory_order_acquire);
}

/* End of stream: wakes a waiting consumer. Producer or owner, any thread.
 * Writes are still accepted afterwards; reads drain what is left. */
static inline void pf_ring_close(pf_ring *r)
{
    atomic_store_explicit(&r->closed, 1, memory_order_seq_cst);
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Consumer: wait until n samples are available (n is capped at capacity).
 * Returns 1 when they are, 0 on timeout or when the ring is closed with fewer
 * available. timeout_s < 0 waits without limit. */
static inline int pf_ring_wait(pf_ring *r, size_t n, double timeout_s)
{
    if (n > r->capacity)
        n = r->capacity;
    if (pf_ring_available(r) >= n)
        return 1;
    if (pf_ring_closed(r) || timeout_s == 0.0)
        return 0;

    struct timespec deadline = {0, 0};
    /* negative (or NaN) waits without limit, and so do 30 years and more */
    int forever = !(timeout_s >= 0.0) || timeout_s > 1e9;
    if (!forever) {
#if defined(__APPLE__)
        clock_gettime(CLOCK_REALTIME, &deadline);
#else
        clock_gettime(CLOCK_MONOTONIC, &deadline);
#endif
        time_t whole = (time_t)timeout_s;
        long frac = (long)((timeout_s - (double)whole) * 1e9);
        deadline.tv_sec += whole;
        deadline.tv_nsec += frac;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec += 1;
            deadline.tv_nsec -= 1000000000L;
        }
    }

    int ready = 0;
    pthread_mutex_lock(&r->mu);
    atomic_store_explicit(&r->wait_for, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->waiters, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    for (;;) {
        if (pf_ring_available(r) >= n) {
            ready = 1;
            break;
        }
        if (atomic_load_explicit(&r->closed, memory_order_seq_cst))
            break;
        if (forever) {
            pthread_cond_wait(&r->cv, &r->mu);
        } else if (pthread_cond_timedwait(&r->cv, &r->mu, &deadline) != 0) {
            /* ETIMEDOUT (any other error would repeat: stop the same way) */
            ready = pf_ring_available(r) >= n;
            break;
        }
    }
    atomic_fetch_sub_explicit(&r->waiters, 1, memory_order_relaxed);
    pthread_mutex_unlock(&r->mu);
    return ready;
}

#endif /* PF_RING_H */
