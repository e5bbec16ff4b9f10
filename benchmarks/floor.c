/* The C floor: pyprocconn's two receive loops without Python, to show what the kernel costs.
 * floor batch: block in recvmmsg(64, MSG_WAITFORONE), let events gather for 1 ms, drain.
 * floor one:   one recvfrom() per event.
 * Subscribes to all events, prints "ready", keeps what the Python consumer keeps (each FORK's
 * child and parent, each EXIT's pid, parent and exit code, in arrival order), stops at SIGUSR1
 * (or SIGINT, SIGTERM), unsubscribes, then prints
 * {"received", "events": [[0 fork | 1 exit, pid, parent, code], ...]}.
 * Built with the vendored headers: gcc -O2 -I headers benchmarks/floor.c */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "netlink.h"
#include "connector.h"
#include "cn_proc.h"

#define SLOTS 64
#define SLOT_SIZE 1024

struct record {
	int kind, pid, parent;
	unsigned code;
};
static struct record *records;
static size_t count, capacity;
static long received;

static volatile sig_atomic_t stop;
static void on_stop(int signum) { (void)signum; stop = 1; }

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

/* One datagram from the kernel: note the fork or exit it carries. */
static void keep(const char *data, ssize_t size, const struct sockaddr_nl *sender) {
	if (size < (ssize_t)(NLMSG_HDRLEN + sizeof(struct cn_msg) + sizeof(struct proc_event)) ||
	    sender->nl_pid != 0)
		return;
	received++;
	struct proc_event event; /* copied out: in the datagram it is only 4-aligned */
	memcpy(&event, data + NLMSG_HDRLEN + sizeof(struct cn_msg), sizeof(event));
	struct record record;
	if (event.what == PROC_EVENT_FORK)
		record = (struct record){0, event.event_data.fork.child_pid,
					 event.event_data.fork.parent_tgid, 0};
	else if (event.what == PROC_EVENT_EXIT)
		record = (struct record){1, event.event_data.exit.process_pid,
					 event.event_data.exit.parent_tgid,
					 event.event_data.exit.exit_code};
	else
		return;
	if (count == capacity) {
		capacity = capacity ? 2 * capacity : 1 << 16;
		records = realloc(records, capacity * sizeof(*records));
		if (!records)
			abort();
	}
	records[count++] = record;
}

int main(int argc, char **argv) {
	int batch = argc > 1 && strcmp(argv[1], "batch") == 0;
	int fd = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_CONNECTOR);
	int size = 4 * 1024 * 1024;
	struct sockaddr_nl local = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC};
	if (fd < 0 || bind(fd, (struct sockaddr *)&local, sizeof(local)) != 0)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
	/* No SA_RESTART: EINTR ends a wait. SIGINT and SIGTERM too, so that they also unsubscribe. */
	struct sigaction action = {.sa_handler = on_stop};
	sigaction(SIGUSR1, &action, NULL);
	sigaction(SIGINT, &action, NULL);
	sigaction(SIGTERM, &action, NULL);
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
	while (!stop) {
		if (!batch) {
			socklen_t length = sizeof(names[0]);
			ssize_t bytes = recvfrom(fd, buffers[0], SLOT_SIZE, 0,
						 (struct sockaddr *)&names[0], &length);
			keep(buffers[0], bytes, &names[0]);
			continue;
		}
		int flags = MSG_WAITFORONE;
		for (;;) {
			for (int i = 0; i < SLOTS; i++)
				messages[i].msg_hdr.msg_namelen = sizeof(names[i]);
			int got = recvmmsg(fd, messages, SLOTS, flags, NULL);
			if (got <= 0)
				break;
			for (int i = 0; i < got; i++)
				keep(buffers[i], messages[i].msg_len, &names[i]);
			if (flags == MSG_WAITFORONE) {
				struct timespec linger = {0, 1000000};
				nanosleep(&linger, NULL);
			} else if (got < SLOTS) {
				break;
			}
			flags = MSG_DONTWAIT;
		}
	}
	control(fd, PROC_CN_MCAST_IGNORE);
	printf("{\"received\": %ld, \"events\": [", received);
	for (size_t i = 0; i < count; i++)
		printf("%s[%d, %d, %d, %u]", i ? ", " : "", records[i].kind, records[i].pid,
		       records[i].parent, records[i].code);
	printf("]}\n");
	return 0;
}
