import sys
print("about to fail", file=sys.stderr)
import ferry_module_that_does_not_exist  # noqa: F401
