#!/bin/sh
# Writes the secrets that the Asterisk configs #include, from the environment, then runs the
# container's command (Asterisk by default).
#
# Asterisk config files cannot read environment variables, and the secrets must not live in
# files that are committed or baked into the image. So each secret becomes a one-line
# "password = ..." file in $ASTERISK_SECRETS_DIR, included by the section that needs it:
#   ARI_PASSWORD        -> ari_password.conf        (ari.conf, user holdslayer)   required
#   USERPHONE_PASSWORD  -> userphone_password.conf  (pjsip.conf, auth userphone)  required
#   TRUNK_PASSWORD      -> trunk_password.conf      (pjsip.conf, auth trunk)      optional
set -eu

secrets_dir="${ASTERISK_SECRETS_DIR:-/run/asterisk-secrets}"
newline='
'
carriage_return=$(printf '\r')

fail() {
    echo "docker-entrypoint: $*" >&2
    exit 1
}

# write_password FILE VARIABLE_NAME VALUE
write_password() {
    case "$3" in
        *"$newline"* | *"$carriage_return"*)
            # A line break would let the value add lines of its own to the config.
            fail "$2 must be a single line"
            ;;
        " "* | *" ")
            # Asterisk trims values, so the password would silently change.
            fail "$2 must not start or end with a space"
            ;;
    esac
    # ';' starts a comment in Asterisk config files unless escaped as '\;'.
    escaped=$(printf '%s' "$3" | sed 's/;/\\;/g')
    printf 'password = %s\n' "$escaped" > "$secrets_dir/$1"
}

[ -n "${ARI_PASSWORD:-}" ] || fail "ARI_PASSWORD is not set (compose passes HOLDSLAYER_ARI_PASSWORD from .env)"
[ -n "${USERPHONE_PASSWORD:-}" ] || fail "USERPHONE_PASSWORD is not set (the password of your SIP phone, in .env)"

umask 027
mkdir -p "$secrets_dir"
write_password ari_password.conf ARI_PASSWORD "$ARI_PASSWORD"
write_password userphone_password.conf USERPHONE_PASSWORD "$USERPHONE_PASSWORD"
if [ -n "${TRUNK_PASSWORD:-}" ]; then
    write_password trunk_password.conf TRUNK_PASSWORD "$TRUNK_PASSWORD"
else
    # The include must exist; without a password the provider will refuse our registration.
    : > "$secrets_dir/trunk_password.conf"
    echo "docker-entrypoint: TRUNK_PASSWORD is not set: calls through the trunk will fail" >&2
fi

# Asterisk drops to the asterisk user (asterisk.conf runuser) before it reads these.
if getent group asterisk > /dev/null 2>&1; then
    chgrp -R asterisk "$secrets_dir"
fi

exec "$@"
