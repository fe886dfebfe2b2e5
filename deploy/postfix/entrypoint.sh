#!/bin/sh
# Configure Postfix from the environment (see Dockerfile) and run it in the foreground.
set -eu
postconf -e \
    "myhostname = ${MAIL_HOSTNAME}" \
    "mydestination = localhost" \
    "virtual_mailbox_domains = ${MAIL_DOMAINS}" \
    "virtual_transport = ${MAILHUB_LMTP}" \
    "smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination, reject_unverified_recipient" \
    "maillog_file = /dev/stdout" \
    "inet_protocols = ipv4"
cp /etc/resolv.conf /etc/hosts /var/spool/postfix/etc/ 2>/dev/null || true
exec postfix start-fg
