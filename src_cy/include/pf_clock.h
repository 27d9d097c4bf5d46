/* pf_clock.h: the clock of Python's time.monotonic(), read from C.
 *
 * The receive path stamps frames in C and the rest of the receiver compares those
 * stamps with time.monotonic(): both must read the same clock, on every platform,
 * so this asks CPython's own clock rather than the OS directly.
 */
#ifndef PF_CLOCK_H
#define PF_CLOCK_H

#include <Python.h>

/* Seconds on time.monotonic()'s clock. */
static inline double pf_monotonic(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    /* Fails only on a broken clock (time.monotonic() would raise): read 0. */
    if (PyTime_MonotonicRaw(&t) < 0) {
        return 0.0;
    }
    return PyTime_AsSecondsDouble(t);
#else
    return _PyTime_AsSecondsDouble(_PyTime_GetMonotonicClock());
#endif
}

#endif
