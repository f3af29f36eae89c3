# A package, so that the tests and scripts/deploy_local.py import `scripts.<module>` whatever
# else is on sys.path.
