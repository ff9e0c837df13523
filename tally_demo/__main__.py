import sys

from tally_demo.demo import main

sys.exit(main())
