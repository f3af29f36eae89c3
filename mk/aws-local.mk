# `make run-aws-local`: the API on the AWS adapters against DynamoDB Local and an SQS emulator
# (moto), all on this machine; see scripts/run-aws-local.sh. Ctrl-C stops everything.
.PHONY: run-aws-local

run-aws-local: $(STAMP) $(NODE_STAMP)
	PORT=$(PORT) scripts/run-aws-local.sh
