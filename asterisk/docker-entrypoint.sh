#!/bin/sh
# Renders the parts of the Asterisk configuration that come from the environment, then runs the
# container's command (Asterisk by default).
#
# Asterisk config files cannot read environment variables, and the secrets must not live in
# files that are committed or baked into the image. So the committed configs #include files that
# are written here, into $ASTERISK_SECRETS_DIR (readable by the asterisk group only):
#   ari_password.conf        ari.conf [holdslayer]          ARI_PASSWORD          required
#   userphone_password.conf  pjsip.conf auth userphone      USERPHONE_PASSWORD    required
#   trunk.conf               pjsip.conf: the trunk          TRUNK_*               see below
#   transport_nat.conf       pjsip.conf [transport-udp]     SIP_PUBLIC_ADDRESS, SIP_LOCAL_NET
#   dialplan_globals.conf    extensions.conf [globals]      TRUNK_CALLERID
#
# The trunk to the SIP provider:
#   TRUNK_HOST       the provider's SIP server: host name or IPv4 address        required
#   TRUNK_PORT       its port, if not 5060
#   TRUNK_USER       the account's SIP user name                                 required with a password
#   TRUNK_PASSWORD   the account's password. Empty: the provider authenticates this host by its
#                    IP address, and the trunk has no auth object at all (an auth without a
#                    password makes Asterisk drop it, and the endpoint that names it).
#   TRUNK_REGISTER   yes/no: register with the provider (default: yes with a password, else no)
#   TRUNK_CALLERID   the caller ID for calls out: 'Alex Smith <+15551234567>' or '+15551234567'
#   TRUNK_MATCH      more addresses or networks the provider's calls come from (comma separated)
#   TRUNK_RESOLVE_TIMEOUT  seconds to keep trying to resolve TRUNK_HOST at start (default 60)
#
# Calls from the provider are identified by their source address. res_pjsip resolves a host name
# in an identify "match" once, when it loads, and drops the whole identify object if that fails
# (DNS not up yet at boot), so the provider's calls would no longer be recognised. Instead the
# host is resolved here, retried for TRUNK_RESOLVE_TIMEOUT seconds, and the identify object gets
# the addresses; if it never resolves the container stops with a message and Compose restarts it.
# No pathname expansion: lists from the environment are split on spaces, never globbed.
set -euf

secrets_dir="${ASTERISK_SECRETS_DIR:-/run/asterisk-secrets}"
newline='
'
carriage_return=$(printf '\r')

fail() {
    echo "docker-entrypoint: $*" >&2
    exit 1
}

warn() {
    echo "docker-entrypoint: $*" >&2
}

# single_line NAME VALUE: a line break would let the value add lines of its own to the config.
single_line() {
    case "$2" in
        *"$newline"* | *"$carriage_return"*) fail "$1 must be a single line" ;;
    esac
}

# check NAME VALUE EXTENDED_REGEX DESCRIPTION: the whole value must match.
check() {
    single_line "$1" "$2"
    printf '%s\n' "$2" | grep -Eqx -- "$3" || fail "$1=$2 is not $4"
}

# check_password NAME VALUE
check_password() {
    single_line "$1" "$2"
    case "$2" in
        " "* | *" ")
            # Asterisk trims values, so the password would silently change.
            fail "$1 must not start or end with a space"
            ;;
    esac
}

# write_password FILE VALUE
write_password() {
    printf 'password = %s\n' "$(escape_semicolons "$2")" > "$secrets_dir/$1"
}

# ';' starts a comment in Asterisk config files unless escaped as '\;'.
escape_semicolons() {
    printf '%s' "$1" | sed 's/;/\\;/g'
}

is_yes() {
    case "$(printf '%s' "$1" | tr 'A-Z' 'a-z')" in
        yes | true | on | 1) return 0 ;;
        no | false | off | 0) return 1 ;;
        *) fail "$2=$1 must be yes or no" ;;
    esac
}

# resolve HOST TIMEOUT: the host's addresses, one a line, retrying until TIMEOUT seconds passed.
resolve() {
    deadline=$(($(date +%s) + $2))
    while :; do
        if addresses=$(getent ahosts "$1"); then
            printf '%s\n' "$addresses" | while read -r address _; do echo "$address"; done | sort -u
            return 0
        fi
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 1
    done
}

ipv4='([0-9]{1,3}\.){3}[0-9]{1,3}'
ipv4_net="$ipv4(/[0-9]{1,2})?"
ipv6_net='[0-9A-Fa-f]*:[0-9A-Fa-f:.]*(/[0-9]{1,3})?'
host_name='[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?'
sip_user='[A-Za-z0-9._~+-]+'
number='\+?[0-9]{2,20}'
caller_name='[^",<>;\\]*'

# --- required secrets -------------------------------------------------------------------------
[ -n "${ARI_PASSWORD:-}" ] || fail "ARI_PASSWORD is not set (compose passes HOLDSLAYER_ARI_PASSWORD from .env)"
[ -n "${USERPHONE_PASSWORD:-}" ] || fail "USERPHONE_PASSWORD is not set (the password of your SIP phone, in .env)"
check_password ARI_PASSWORD "$ARI_PASSWORD"
check_password USERPHONE_PASSWORD "$USERPHONE_PASSWORD"

# --- the trunk's settings; everything is checked before anything is written -----------------------------
trunk_host="${TRUNK_HOST:-}"
trunk_port="${TRUNK_PORT:-}"
trunk_user="${TRUNK_USER:-}"
trunk_password="${TRUNK_PASSWORD:-}"
trunk_callerid="${TRUNK_CALLERID:-}"
trunk_match="${TRUNK_MATCH:-}"
resolve_timeout="${TRUNK_RESOLVE_TIMEOUT:-60}"

[ -n "$trunk_host" ] || fail "TRUNK_HOST is not set (your SIP provider's server, in .env)"
check TRUNK_HOST "$trunk_host" "$host_name" "a host name or an IPv4 address"
if [ -n "$trunk_port" ]; then
    check TRUNK_PORT "$trunk_port" '[0-9]{1,5}' "a port number"
    [ "$trunk_port" -ge 1 ] && [ "$trunk_port" -le 65535 ] || fail "TRUNK_PORT=$trunk_port is not a port number"
fi
[ -z "$trunk_user" ] || check TRUNK_USER "$trunk_user" "$sip_user" "a SIP user name (letters, digits and . _ ~ + -)"
check TRUNK_RESOLVE_TIMEOUT "$resolve_timeout" '[0-9]+' "a number of seconds"

if [ -n "$trunk_password" ]; then
    check_password TRUNK_PASSWORD "$trunk_password"
    [ -n "$trunk_user" ] || fail "TRUNK_PASSWORD is set but TRUNK_USER is not: the provider needs both"
    register_default=yes
else
    register_default=no
fi
if is_yes "${TRUNK_REGISTER:-$register_default}" TRUNK_REGISTER; then
    register=yes
    [ -n "$trunk_password" ] || fail "TRUNK_REGISTER=yes needs TRUNK_USER and TRUNK_PASSWORD (a provider that authenticates by IP address takes no registration)"
else
    register=no
fi

callerid_number=""
callerid_name=""
if [ -n "$trunk_callerid" ]; then
    single_line TRUNK_CALLERID "$trunk_callerid"
    if printf '%s\n' "$trunk_callerid" | grep -Eqx -- "$number"; then
        callerid_number="$trunk_callerid"
    elif printf '%s\n' "$trunk_callerid" | grep -Eqx -- "\"?$caller_name\"? *<$number>"; then
        callerid_number=$(printf '%s' "$trunk_callerid" | sed -E 's/.*<(.*)>$/\1/')
        callerid_name=$(printf '%s' "$trunk_callerid" | sed -E 's/ *<.*$//; s/^"//; s/"$//; s/^ +//; s/ +$//')
    else
        fail "TRUNK_CALLERID=$trunk_callerid is not 'Name <+15551234567>' or '+15551234567' (no commas, ; or <> in the name)"
    fi
fi

match_entries=$(printf '%s' "$trunk_match" | tr ',' ' ')
for entry in $match_entries; do
    check TRUNK_MATCH "$entry" "$ipv4_net|$ipv6_net" "an IP address or network (host names are not resolved here)"
done

public_address="${SIP_PUBLIC_ADDRESS:-}"
local_net="${SIP_LOCAL_NET:-10.0.0.0/8,172.16.0.0/12,192.168.0.0/16}"
[ -z "$public_address" ] || check SIP_PUBLIC_ADDRESS "$public_address" "$ipv4" "an IPv4 address"
for entry in $(printf '%s' "$local_net" | tr ',' ' '); do
    check SIP_LOCAL_NET "$entry" "$ipv4_net" "an IPv4 network such as 192.168.1.0/24"
done

# --- the provider's addresses ------------------------------------------------------------------
if ! provider_addresses=$(resolve "$trunk_host" "$resolve_timeout"); then
    fail "TRUNK_HOST=$trunk_host does not resolve (tried for ${resolve_timeout}s): check the name and this host's DNS; calls from the provider could not be recognised"
fi

# --- write the files ---------------------------------------------------------------------------
umask 027
mkdir -p "$secrets_dir"
write_password ari_password.conf "$ARI_PASSWORD"
write_password userphone_password.conf "$USERPHONE_PASSWORD"

server="$trunk_host${trunk_port:+:$trunk_port}"
# The From user: the account, or for an IP-authenticated trunk the caller ID number.
from_user="${trunk_user:-$callerid_number}"
{
    echo "; Written by docker-entrypoint.sh from the environment at start-up. Do not edit."
    echo "; The static options are the trunk-* templates in pjsip.conf."
    echo
    echo "[trunk](trunk-endpoint)"
    echo "from_domain = $trunk_host"
    [ -z "$from_user" ] || echo "from_user = $from_user"
    if [ -n "$callerid_number" ]; then
        if [ -n "$callerid_name" ]; then
            echo "callerid = \"$callerid_name\" <$callerid_number>"
        else
            echo "callerid = <$callerid_number>"
        fi
        # With from_user set, the caller ID of a call the dialplan places (the emergency route)
        # reaches the provider in P-Asserted-Identity.
        echo "send_pai = yes"
    fi
    if [ -n "$trunk_password" ]; then
        echo "outbound_auth = trunk"
        echo
        echo "[trunk]"
        echo "type = auth"
        echo "auth_type = digest"
        echo "username = $trunk_user"
        echo "password = $(escape_semicolons "$trunk_password")"
    fi
    echo
    echo "[trunk](trunk-aor)"
    echo "contact = sip:$server"
    if [ "$register" = yes ]; then
        echo
        echo "[trunk](trunk-registration)"
        echo "outbound_auth = trunk"
        echo "server_uri = sip:$server"
        echo "client_uri = sip:$trunk_user@$trunk_host"
        echo "contact_user = $trunk_user"
    fi
    echo
    echo "; $trunk_host resolved at start-up; restart to pick up new addresses."
    echo "[trunk](trunk-identify)"
    for address in $provider_addresses $match_entries; do
        echo "match = $address"
    done
} > "$secrets_dir/trunk.conf"

{
    echo "; Written by docker-entrypoint.sh from SIP_PUBLIC_ADDRESS and SIP_LOCAL_NET. Do not edit."
    if [ -n "$public_address" ]; then
        echo "external_media_address = $public_address"
        echo "external_signaling_address = $public_address"
        for entry in $(printf '%s' "$local_net" | tr ',' ' '); do
            echo "local_net = $entry"
        done
    fi
} > "$secrets_dir/transport_nat.conf"

{
    echo "; Written by docker-entrypoint.sh from TRUNK_CALLERID. Do not edit."
    echo "TRUNK_CALLERID_NUM = $callerid_number"
    echo "TRUNK_CALLERID_NAME = $callerid_name"
} > "$secrets_dir/dialplan_globals.conf"

if [ "$register" = yes ]; then
    mode="digest authentication as $trunk_user, registering"
elif [ -n "$trunk_password" ]; then
    mode="digest authentication as $trunk_user, not registering"
else
    mode="no authentication (the provider recognises this host's IP address)"
fi
echo "docker-entrypoint: trunk $server: $mode; calls from $(echo $provider_addresses $match_entries) are the provider's"
[ -n "$callerid_number" ] || warn "TRUNK_CALLERID is not set: emergency calls go out without your number"

# Asterisk drops to the asterisk user (asterisk.conf runuser) before it reads these.
if getent group asterisk > /dev/null 2>&1; then
    chgrp -R asterisk "$secrets_dir"
fi

exec "$@"
