"""`python -m bench.loadgen install`: install the pinned vegeta into .tools/bin."""

import sys

from bench.loadgen.vegeta import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
