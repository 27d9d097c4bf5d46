/* Producer/consumer stress of pf_ring.h, native threads, no Python: built by
 * tests/test_ring_native.py with ThreadSanitizer.
 *
 *   ring_stress oldest|newest lossy|lossless TOTAL
 *
 * The producer writes the sequence 0, 1, 2 ... (as 16-bit values) in chunks of
 * random size; "lossless" re-offers what did not fit (drop-newest only). It
 * stays within LEAD samples of what the consumer has taken, so every step
 * between two delivered samples is unambiguous modulo 2**16. The consumer
 * reads chunks of random size and checks that each sample comes after the one
 * before it (never twice, never backwards); lossless: exactly after it. At the
 * end: delivered + overruns == TOTAL (lossy), delivered == TOTAL (lossless).
 * It also counts the reads whose claim lost a race with the producer and started
 * again (the ring's PF_RING_ON_RETRY hook), so the retry path is seen to run.
 * Exit 0 when every check holds. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>
#include <stdint.h>

static _Atomic uint64_t retries;
#define PF_RING_ON_RETRY() atomic_fetch_add_explicit(&retries, 1, memory_order_relaxed)

#include "pf_ring.h"

#define CAPACITY 4096
#define LEAD 30000
#define MAX_CHUNK 700

static pf_ring ring;
static int lossless;
static uint64_t total;
static _Atomic uint64_t taken;   /* absolute position after the last delivered sample */
static _Atomic int finished;

static void *produce(void *arg)
{
    (void)arg;
    int16_t chunk[MAX_CHUNK];
    unsigned seed = 1;
    for (uint64_t pos = 0; pos < total;) {
        size_t n = 1 + (size_t)(rand_r(&seed) % MAX_CHUNK);
        if (n > total - pos) n = (size_t)(total - pos);
        while (pos + n - atomic_load(&taken) > LEAD) sched_yield();
        for (size_t i = 0; i < n; i++) chunk[i] = (int16_t)(uint16_t)(pos + i);
        size_t stored = 0;
        do {
            stored += pf_ring_write(&ring, chunk + stored, n - stored);
        } while (lossless && stored < n);
        pos += n;
    }
    atomic_store(&finished, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) return 64;
    int policy = strcmp(argv[1], "newest") == 0 ? PF_DROP_NEWEST : PF_DROP_OLDEST;
    lossless = strcmp(argv[2], "lossless") == 0;
    total = strtoull(argv[3], NULL, 10);
    if (pf_ring_init(&ring, CAPACITY, policy) != 0) return 65;

    pthread_t producer;
    pthread_create(&producer, NULL, produce, NULL);
    int16_t buf[2 * CAPACITY];
    unsigned seed = 7;
    uint64_t delivered = 0, position = 0;   /* position: absolute, after the last sample */
    for (;;) {
        size_t k = pf_ring_read(&ring, buf, 1 + (size_t)(rand_r(&seed) % (2 * CAPACITY)));
        if (k == 0) {
            if (atomic_load(&finished) && pf_ring_available(&ring) == 0) break;
            sched_yield();
            continue;
        }
        for (size_t i = 0; i < k; i++) {
            uint16_t step = (uint16_t)((uint16_t)buf[i] - (uint16_t)position);
            /* the sample at `position` has step 0: the next one in sequence */
            if (step >= LEAD || (lossless && step != 0)) {
                printf("sample %llu out of sequence (step %u)\n",
                       (unsigned long long)delivered, step);
                return 1;
            }
            position += (uint64_t)step + 1;
        }
        delivered += k;
        atomic_store(&taken, position);
    }
    pthread_join(producer, NULL);
    uint64_t lost = pf_ring_overruns(&ring);
    printf("%s %s: delivered %llu, overruns %llu, total %llu, read retries %llu\n", argv[1],
           argv[2], (unsigned long long)delivered, (unsigned long long)lost,
           (unsigned long long)total, (unsigned long long)atomic_load(&retries));
    pf_ring_free(&ring);
    if (lossless) return delivered == total ? 0 : 2;
    return delivered + lost == total && position <= total ? 0 : 2;
}
