"""Records a forwarded SIGTERM/SIGINT in $SHIM_TEST_OUT/signal_rank<RANK>.txt and exits 0; writes
ready_rank<RANK> first so the test knows when to signal the launcher."""
import os
import signal
import sys
import time

out = os.environ["SHIM_TEST_OUT"]
rank = os.environ["RANK"]


def handler(signum, _frame):
    with open(os.path.join(out, f"signal_rank{rank}.txt"), "w") as f:
        f.write(signal.Signals(signum).name)
    sys.exit(0)


signal.signal(signal.SIGTERM, handler)
signal.signal(signal.SIGINT, handler)
open(os.path.join(out, f"ready_rank{rank}"), "w").close()
time.sleep(120)
