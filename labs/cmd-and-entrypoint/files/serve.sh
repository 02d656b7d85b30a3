#!/bin/sh
# A stand-in for a real service: it works until it is asked to stop, then tidies up and leaves.
# It says which PID it has, so you can see whether it is the container's first process.
trap 'echo "serve: got SIGTERM, closing connections, bye"; exit 0' TERM
echo "serve: started as PID $$"
while true; do
  # sleep in the background and wait for it: a trapped signal interrupts `wait` at once.
  sleep 60 &
  wait $!
done
