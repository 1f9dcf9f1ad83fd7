"""Native runtime: JIT compilation and execution of compiled graphs."""
