#!/usr/bin/env bash
# Makes the Docker secrets docker-compose.yml reads, in secrets/ (git- and
# docker-ignored): random passwords, the broker's JAAS file and the worker's
# MongoDB URI built from them. Keeps files that exist (rotate by deleting
# one, then recreate the containers that use it). Idempotent.
#
#   scripts/compose-secrets.sh && docker compose up --build
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/secrets"
mkdir -p "$dir"
# The directory keeps other host users out; the files are readable by the
# containers' users (compose bind-mounts file secrets with host permissions).
chmod 700 "$dir"

random_secret() {
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
}

# Writes NAME with the output of "${@:2}" unless it exists.
make_secret() {
    local file="$dir/$1"
    shift
    [[ -s $file ]] && return 0
    "$@" >"$file.tmp"
    chmod 644 "$file.tmp"
    mv "$file.tmp" "$file"
    echo "made secrets/${file##*/}"
}

jaas() {
    cat <<JAAS
KafkaServer {
    org.apache.kafka.common.security.plain.PlainLoginModule required
        user_gateway="$(<"$dir/kafka_gateway_password")"
        user_worker="$(<"$dir/kafka_worker_password")";
    org.apache.kafka.common.security.scram.ScramLoginModule required;
};
JAAS
}

# The key that signs and verifies commands (docs/contract.md, "Signing").
command_key() {
    printf 'gateway:%s:admin+customer\n' "$(head -c32 /dev/urandom | base64 -w0)"
}

mongodb_uri() {
    printf 'mongodb://ticket-worker:%s@mongo:27017/ticketing?authSource=ticketing\n' \
        "$(<"$dir/mongo_worker_password")"
}

make_secret jwt_secret random_secret
make_secret command_keys command_key
make_secret kafka_gateway_password random_secret
make_secret kafka_worker_password random_secret
make_secret mongo_root_password random_secret
make_secret mongo_worker_password random_secret
# Derived files: made again whenever a password they hold is newer.
for derived in kafka_server_jaas.conf mongodb_uri_worker; do
    for source in kafka_gateway_password kafka_worker_password mongo_worker_password; do
        if [[ $dir/$source -nt $dir/$derived ]]; then rm -f "$dir/$derived"; fi
    done
done
make_secret kafka_server_jaas.conf jaas
make_secret mongodb_uri_worker mongodb_uri
