"""Tools that drive the running system from outside: traffic scenarios and their simulation."""
