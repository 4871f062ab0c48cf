/* What the kernel knows about a connected TCP socket. Kept apart because it needs
 * <linux/tcp.h>, whose struct tcp_info (with the byte counters) clashes with the older
 * one in <netinet/tcp.h> that microhttpd.h pulls in. */
#ifndef MDL_SOCKINFO_H
#define MDL_SOCKINFO_H

#include <stdint.h>

/* Bytes received on the socket since it opened (read or not), or 0 if unknown. */
uint64_t mdl_sock_bytes_received(int fd);

#endif
