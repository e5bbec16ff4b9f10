/* The C floor: pyprocconn's two receive loops without Python, to show what the kernel costs.
 * floor batch: block in recvmmsg(64, MSG_WAITFORONE), let events gather for 1 ms, drain.
 * floor one:   one recv() per event.
 * Subscribes to all events, prints "ready", stops at SIGUSR1, prints {"received", "cpu"}.
 * Built with the vendored headers: gcc -O2 -I headers benchmarks/floor.c */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netlink.h"
#include "connector.h"
#include "cn_proc.h"

#define SLOTS 64
#define SLOT_SIZE 1024

static volatile sig_atomic_t stop;
static void on_usr1(int signum) { (void)signum; stop = 1; }

static int control(int fd, enum proc_cn_mcast_op op) {
	struct {
		struct nlmsghdr header;
		struct cn_msg message;
		struct proc_input input;
	} __attribute__((packed)) request;
	memset(&request, 0, sizeof(request));
	request.header.nlmsg_len = sizeof(request);
	request.header.nlmsg_type = NLMSG_DONE;
	request.message.id.idx = CN_IDX_PROC;
	request.message.id.val = CN_VAL_PROC;
	request.message.len = sizeof(request.input);
	request.input.mcast_op = op;
	request.input.event_type = PROC_EVENT_ALL;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	return sendto(fd, &request, sizeof(request), 0, (struct sockaddr *)&kernel, sizeof(kernel));
}

int main(int argc, char **argv) {
	int batch = argc > 1 && strcmp(argv[1], "batch") == 0;
	int fd = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_CONNECTOR);
	int size = 4 * 1024 * 1024;
	struct sockaddr_nl local = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC};
	if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof(local)) != 0)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
	struct sigaction action = {.sa_handler = on_usr1};  /* no SA_RESTART: EINTR ends a wait */
	sigaction(SIGUSR1, &action, NULL);
	if (control(fd, PROC_CN_MCAST_LISTEN) < 0)
		return 1;
	printf("ready\n");
	fflush(stdout);

	static char buffers[SLOTS][SLOT_SIZE];
	struct iovec iov[SLOTS];
	struct mmsghdr messages[SLOTS];
	struct sockaddr_nl names[SLOTS];
	for (int i = 0; i < SLOTS; i++) {
		iov[i] = (struct iovec){buffers[i], SLOT_SIZE};
		messages[i].msg_hdr = (struct msghdr){.msg_name = &names[i],
						      .msg_namelen = sizeof(names[i]),
						      .msg_iov = &iov[i], .msg_iovlen = 1};
	}
	long received = 0;
	struct rusage start, end;
	getrusage(RUSAGE_SELF, &start);
	while (!stop) {
		if (!batch) {
			if (recv(fd, buffers[0], SLOT_SIZE, 0) > 0)
				received++;
			continue;
		}
		int flags = MSG_WAITFORONE;
		for (;;) {
			for (int i = 0; i < SLOTS; i++)
				messages[i].msg_hdr.msg_namelen = sizeof(names[i]);
			int count = recvmmsg(fd, messages, SLOTS, flags, NULL);
			if (count <= 0)
				break;
			received += count;
			if (flags == MSG_WAITFORONE) {
				struct timespec linger = {0, 1000000};
				nanosleep(&linger, NULL);
			} else if (count < SLOTS) {
				break;
			}
			flags = MSG_DONTWAIT;
		}
	}
	getrusage(RUSAGE_SELF, &end);
	control(fd, PROC_CN_MCAST_IGNORE);
	double cpu = (end.ru_utime.tv_sec - start.ru_utime.tv_sec) +
		     (end.ru_utime.tv_usec - start.ru_utime.tv_usec) / 1e6 +
		     (end.ru_stime.tv_sec - start.ru_stime.tv_sec) +
		     (end.ru_stime.tv_usec - start.ru_stime.tv_usec) / 1e6;
	printf("{\"received\": %ld, \"cpu\": %.6f}\n", received, cpu);
	return 0;
}
