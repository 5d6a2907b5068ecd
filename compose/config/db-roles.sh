#!/bin/sh
# The compose stack's one-shot db-roles service: the shop's database role, an ordinary one that
# owns the shop database and its public schema and nothing else, with this project's password.
# Run at every `up`, so a volume kept from an earlier `up` takes the new password too.
set -eu

case "${HARNESS_SHOP_DB_PASSWORD:-}" in
    "")
        echo "db-roles: HARNESS_SHOP_DB_PASSWORD is not set" \
            "(harness up --stack compose makes one up; by hand, set it)" >&2
        exit 1 ;;
    *[!A-Za-z0-9_-]*)
        echo "db-roles: HARNESS_SHOP_DB_PASSWORD: letters, digits, - and _ only" >&2
        exit 1 ;;
esac

# The superuser through the socket the server shares with this container only (trusted there).
if ! psql -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -U postgres -d shop <<'SQL'
\getenv password HARNESS_SHOP_DB_PASSWORD
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop') AS missing \gset
\if :missing
CREATE ROLE shop LOGIN;
\endif
ALTER ROLE shop LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'password';
ALTER DATABASE shop OWNER TO shop;
ALTER SCHEMA public OWNER TO shop;
SQL
then
    echo "db-roles: could not set up the role shop as the superuser postgres; a volume an" \
        "older harness made has no such superuser: \`harness down --stack compose\` removes it" >&2
    exit 1
fi
echo "db-roles: role shop is ready"
