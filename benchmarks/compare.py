"""Two saved runs' verdict tables side by side (see harness/compare.py).

    python benchmarks/compare.py [BEFORE.json AFTER.json] [-k WORDS]
"""
from harness.compare import main

if __name__ == "__main__":
    main()
