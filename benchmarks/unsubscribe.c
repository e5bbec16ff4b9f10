/* LD_PRELOAD shim for forkstat, which never sends IGNORE: it only closes its socket, and closing
 * does not lower the kernel's global listener count, so every run would leave a listener
 * registered until reboot. This sends the IGNORE forkstat lacks, on forkstat's own socket, when
 * forkstat closes it (or exits with it open). Nothing on the receive path is touched.
 * Built with the vendored headers: gcc -O2 -shared -fPIC -I headers benchmarks/unsubscribe.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <sys/socket.h>

#include "netlink.h"
#include "connector.h"
#include "cn_proc.h"

static int connector_fd = -1;

static void ignore(void) {
	struct {
		struct nlmsghdr header;
		struct cn_msg message;
		enum proc_cn_mcast_op op;
	} __attribute__((packed)) request;
	if (connector_fd < 0)
		return;
	memset(&request, 0, sizeof(request));
	request.header.nlmsg_len = sizeof(request);
	request.header.nlmsg_type = NLMSG_DONE;
	request.message.id.idx = CN_IDX_PROC;
	request.message.id.val = CN_VAL_PROC;
	request.message.len = sizeof(request.op);
	request.op = PROC_CN_MCAST_IGNORE;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	sendto(connector_fd, &request, sizeof(request), 0, (struct sockaddr *)&kernel,
	       sizeof(kernel));
	connector_fd = -1;
}

int socket(int domain, int type, int protocol) {
	int (*real)(int, int, int) = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
	int fd = real(domain, type, protocol);
	if (fd >= 0 && domain == AF_NETLINK && protocol == NETLINK_CONNECTOR)
		connector_fd = fd;
	return fd;
}

int close(int fd) {
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "close");
	if (fd >= 0 && fd == connector_fd)
		ignore();
	return real(fd);
}

__attribute__((destructor)) static void at_exit(void) { ignore(); }
