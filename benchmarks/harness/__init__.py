"""What the benchmarks run on: the end-to-end load client and servers and the capacity
search (e2e*), the figures' keys (keys), the run's figures and their file (results),
the verdict rows and tables (rows, verdict), the plots and the comparison of two runs
(plots, compare), timing, per-core CPU accounting (cores), and G.711 tables for the
baselines (g711)."""
