"""`fleetwave demo` (commands/demo.py is its command line), by concern: the bundle it deploys (bundle.py), the
plan of who fails and who stays silent (plan.py), reading a job (view.py), showing it (display.py), and the
run itself (run.py). The stack runs through fleetwave.local.serve_process, the robots through
fleetwave.local.simulator."""
