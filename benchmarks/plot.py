"""Draw the benchmark figures from a saved run (see harness/plots.py).

    python benchmarks/plot.py [RESULTS.json] [--out DIR]
"""
from harness.plots import main

if __name__ == "__main__":
    main()
