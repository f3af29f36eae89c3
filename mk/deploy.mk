# `make deploy-local`: infra/terraform applied to moto's AWS emulator on this machine: the real
# configuration on a copy, with a generated override that points every AWS service it uses at
# moto (scripts/deploy_local.py; the workarounds for moto's gaps are in
# scripts/emulator_override.py). Every part of the stack is on (WAF, KMS keys, alarms), with
# two clinics and the artifact of `make package`. It applies (about 3 minutes), prints the
# outputs, checks that a second plan is empty, then keeps moto and the stack until Ctrl-C,
# which destroys the stack, checks that the state is empty and stops moto.
# `make deploy-local DEPLOY_LOCAL_ARGS=--no-wait` destroys at once (exit 0: all went well).
# Needs terraform on the PATH; offline, the AWS provider comes from TF_PLUGIN_DIR (or
# /opt/tf-plugins).
DEPLOY_LOCAL_ARGS ?=

.PHONY: deploy-local

deploy-local: $(STAMP) package
	$(BIN)/python scripts/deploy_local.py --lambda-zip dist/lambda.zip $(DEPLOY_LOCAL_ARGS)
