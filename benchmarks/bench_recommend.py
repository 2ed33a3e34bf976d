"""Taste-capture benchmark; same as ``sumo bench recommend`` (arguments pass through).

    python -m benchmarks.bench_recommend --items 100000 --users 50
"""

import sys

from sumo.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "recommend", *sys.argv[1:]]))
