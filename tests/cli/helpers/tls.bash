# shellcheck shell=bash
# Certificates for the TLS tests, made with the openssl command in the
# test's own directory (after fd_common_setup):
#
# fd_tls_setup         $FD_TLS/ca.pem (+ .key): the cluster's CA;
#                      $FD_TLS/node.pem, node.key: for 127.0.0.1 (IP SAN),
#                      server and client use, signed by the CA;
#                      $FD_TLS/client.pem, client.key: a client certificate;
#                      $FD_TLS/other-ca.pem and stranger.pem/.key: another
#                      CA and a client certificate it signed.
# fd_tls_cert CA NAME [SAN]
#                      one more certificate NAME signed by CA.

_fd_tls_key()
{
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

_fd_tls_ca()
{
	_fd_tls_key "$FD_TLS/$1.key" &&
		openssl req -x509 -new -key "$FD_TLS/$1.key" -subj "/CN=$1" -days 2 \
			-out "$FD_TLS/$1.pem" 2>/dev/null
}

fd_tls_cert()
{
	local ca=$1 name=$2 san=${3:-IP:127.0.0.1}
	_fd_tls_key "$FD_TLS/$name.key" &&
		openssl req -new -key "$FD_TLS/$name.key" -subj "/CN=$name" \
			-out "$FD_TLS/$name.csr" 2>/dev/null &&
		printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" \
			>"$FD_TLS/$name.ext" &&
		openssl x509 -req -in "$FD_TLS/$name.csr" -CA "$FD_TLS/$ca.pem" \
			-CAkey "$FD_TLS/$ca.key" -CAcreateserial -days 2 \
			-extfile "$FD_TLS/$name.ext" -out "$FD_TLS/$name.pem" 2>/dev/null
}

fd_tls_setup()
{
	FD_TLS=$FD_TMP/tls
	mkdir -p "$FD_TLS"
	_fd_tls_ca ca || return 1
	_fd_tls_ca other-ca || return 1
	fd_tls_cert ca node || return 1
	fd_tls_cert ca client || return 1
	fd_tls_cert other-ca stranger || return 1
	chmod 600 "$FD_TLS"/*.key
	export FD_TLS
}
