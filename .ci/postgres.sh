#!/bin/sh
# Sets up a local PostgreSQL for the storage/postgres tests on a Debian
# machine, as root, idempotently, and prints the DSN on stdout (nothing
# else goes to stdout), so a caller can do:
#
#   export ROOST_TEST_POSTGRES="$(.ci/postgres.sh)"
#
# The role may create databases: the conformance suite makes a fresh
# database per test and drops it afterwards. pg_trgm (shipped in the
# postgresql-15 package on Debian 12) is installed into template1 so that
# every fresh database has it without needing superuser rights.
set -eu

ROLE=roost
PASS=roost
DB=roost
PORT=5432

log() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
	log "installing postgresql"
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
fi

ver=$(pg_lsclusters -h | awk 'NR==1 {print $1}')
cluster=$(pg_lsclusters -h | awk 'NR==1 {print $2}')
if [ -z "$ver" ]; then
	log "no cluster found; creating 15/main"
	pg_createcluster 15 main >&2
	ver=15
	cluster=main
fi
if ! pg_lsclusters -h | awk -v v="$ver" -v c="$cluster" '$1==v && $2==c {print $4}' | grep -q online; then
	log "starting cluster $ver/$cluster"
	pg_ctlcluster "$ver" "$cluster" start >&2
fi
PORT=$(pg_lsclusters -h | awk -v v="$ver" -v c="$cluster" '$1==v && $2==c {print $3}')

# Wait until it accepts connections (a fresh start may take a moment).
i=0
until su postgres -c "psql -p $PORT -qAtc 'select 1'" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -gt 60 ]; then
		log "PostgreSQL did not come up"
		exit 1
	fi
	sleep 0.5
done

psql_su() { su postgres -c "psql -p $PORT -v ON_ERROR_STOP=1 -qAt $*" >&2; }

if [ "$(su postgres -c "psql -p $PORT -qAtc \"select 1 from pg_roles where rolname='$ROLE'\"")" != 1 ]; then
	psql_su "-c \"create role $ROLE login createdb password '$PASS'\""
else
	psql_su "-c \"alter role $ROLE login createdb password '$PASS'\""
fi
psql_su "-d template1 -c 'create extension if not exists pg_trgm'"
# DROP DATABASE ... WITH (FORCE) in the tests ends connections a killed
# crash-test child left behind, which needs this role.
psql_su "-c 'grant pg_signal_backend to $ROLE'"
if [ "$(su postgres -c "psql -p $PORT -qAtc \"select 1 from pg_database where datname='$DB'\"")" != 1 ]; then
	psql_su "-c 'create database $DB owner $ROLE'"
fi
psql_su "-d $DB -c 'create extension if not exists pg_trgm'"

echo "postgres://$ROLE:$PASS@127.0.0.1:$PORT/$DB?sslmode=disable"
