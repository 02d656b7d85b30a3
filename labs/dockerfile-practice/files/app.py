"""A tiny inventory service: reads its stock from YAML and prints it. The point is the Dockerfile."""
import signal
import sys
import time

import yaml

STOCK = yaml.safe_load("""
apples: 12
pears: 7
""")


def stop(signum, frame):
    print("inventory: SIGTERM, saving and leaving", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
print("inventory:", ", ".join(f"{k}={v}" for k, v in STOCK.items()), flush=True)
while True:
    time.sleep(1)
