/* One epoll loop; see loop.h. Timers live in a binary min-heap of caller-owned
 * structs; fd watches in a table indexed by fd. */
#include "loop.h"
#include "clock.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define MAX_EVENTS 64
#define MAX_FD (1 << 20)

struct watch {
	fd_loop_fd_cb cb;
	void *arg;
	uint32_t events;
	int active;
};

struct sig {
	int signo;
	fd_loop_signal_cb cb;
	void *arg;
};

struct fd_loop {
	int epfd;
	int64_t now;
	int stop;
	uint64_t seq;
	struct watch *watches;
	size_t nwatches;
	struct fd_timer **heap;
	size_t nheap, capheap;
	int sigfd;
	sigset_t sigs;
	struct sig sighandlers[16];
	int nsig;
};

struct fd_loop *fd_loop_new(void)
{
	struct fd_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		free(loop);
		return NULL;
	}
	loop->sigfd = -1;
	sigemptyset(&loop->sigs);
	loop->now = fd_mono_ms();
	return loop;
}

void fd_loop_free(struct fd_loop *loop)
{
	if (!loop)
		return;
	for (size_t i = 0; i < loop->nheap; i++)
		loop->heap[i]->slot = 0;
	if (loop->sigfd >= 0) {
		close(loop->sigfd);
		sigprocmask(SIG_UNBLOCK, &loop->sigs, NULL);
	}
	close(loop->epfd);
	free(loop->watches);
	free(loop->heap);
	free(loop);
}

int64_t fd_loop_now(const struct fd_loop *loop)
{
	return loop->now;
}

int64_t fd_loop_update_now(struct fd_loop *loop)
{
	loop->now = fd_mono_ms();
	return loop->now;
}

int fd_loop_watch(struct fd_loop *loop, int fd, uint32_t events,
		  fd_loop_fd_cb cb, void *arg)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};
	int op;

	if (fd < 0 || fd >= MAX_FD) {
		errno = EBADF;
		return -1;
	}
	if ((size_t)fd >= loop->nwatches) {
		size_t n = loop->nwatches ? loop->nwatches : 64;
		struct watch *w;

		while (n <= (size_t)fd)
			n *= 2;
		w = realloc(loop->watches, n * sizeof(*w));
		if (!w)
			return -1;
		memset(w + loop->nwatches, 0, (n - loop->nwatches) * sizeof(*w));
		loop->watches = w;
		loop->nwatches = n;
	}
	op = loop->watches[fd].active ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(loop->epfd, op, fd, &ev) < 0)
		return -1;
	loop->watches[fd] = (struct watch){cb, arg, events, 1};
	return 0;
}

void fd_loop_unwatch(struct fd_loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->nwatches || !loop->watches[fd].active)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	loop->watches[fd].active = 0;
}

/* Timer heap */

static int timer_before(const struct fd_timer *a, const struct fd_timer *b)
{
	return a->deadline < b->deadline ||
	       (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(struct fd_loop *loop, size_t i, struct fd_timer *t)
{
	loop->heap[i] = t;
	t->slot = i + 1;
}

static void heap_up(struct fd_loop *loop, size_t i)
{
	struct fd_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!timer_before(t, loop->heap[parent]))
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct fd_loop *loop, size_t i)
{
	struct fd_timer *t = loop->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= loop->nheap)
			break;
		if (c + 1 < loop->nheap &&
		    timer_before(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!timer_before(loop->heap[c], t))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

static void heap_remove(struct fd_loop *loop, struct fd_timer *t)
{
	size_t i = t->slot - 1;

	t->slot = 0;
	loop->nheap--;
	if (i == loop->nheap)
		return;
	struct fd_timer *moved = loop->heap[loop->nheap];

	heap_set(loop, i, moved);
	heap_up(loop, i);
	heap_down(loop, moved->slot - 1);
}

void fd_timer_init(struct fd_timer *t, fd_timer_cb cb, void *arg)
{
	memset(t, 0, sizeof(*t));
	t->cb = cb;
	t->arg = arg;
}

int fd_timer_arm_at(struct fd_loop *loop, struct fd_timer *t, int64_t deadline)
{
	if (t->slot)
		heap_remove(loop, t);
	if (loop->nheap == loop->capheap) {
		size_t n = loop->capheap ? loop->capheap * 2 : 32;
		struct fd_timer **h = realloc(loop->heap, n * sizeof(*h));

		if (!h) {
			errno = ENOMEM;
			return -1;
		}
		loop->heap = h;
		loop->capheap = n;
	}
	t->deadline = deadline;
	t->seq = ++loop->seq;
	loop->heap[loop->nheap++] = t;
	heap_up(loop, loop->nheap - 1);
	return 0;
}

int fd_timer_arm(struct fd_loop *loop, struct fd_timer *t, int64_t delay_ms)
{
	return fd_timer_arm_at(loop, t,
			       fd_loop_now(loop) + (delay_ms > 0 ? delay_ms : 0));
}

void fd_timer_disarm(struct fd_loop *loop, struct fd_timer *t)
{
	if (t->slot)
		heap_remove(loop, t);
}

/* Signals */

static void on_signalfd(struct fd_loop *loop, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)arg;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		for (int i = 0; i < loop->nsig; i++)
			if (loop->sighandlers[i].signo == (int)si.ssi_signo)
				loop->sighandlers[i].cb(loop, (int)si.ssi_signo,
							loop->sighandlers[i].arg);
	}
}

int fd_loop_signal(struct fd_loop *loop, int signo, fd_loop_signal_cb cb, void *arg)
{
	int fd;

	if (loop->nsig ==
	    (int)(sizeof(loop->sighandlers) / sizeof(loop->sighandlers[0]))) {
		errno = ENOSPC;
		return -1;
	}
	sigaddset(&loop->sigs, signo);
	if (sigprocmask(SIG_BLOCK, &loop->sigs, NULL) < 0)
		return -1;
	fd = signalfd(loop->sigfd, &loop->sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (loop->sigfd < 0) {
		loop->sigfd = fd;
		if (fd_loop_watch(loop, fd, EPOLLIN, on_signalfd, NULL) < 0)
			return -1;
	}
	loop->sighandlers[loop->nsig++] = (struct sig){signo, cb, arg};
	return 0;
}

/* Running */

static int run_timers(struct fd_loop *loop)
{
	int n = 0;

	/* Only timers due now; ones armed by callbacks for "now" wait for the
	 * next iteration, so a timer re-arming itself with 0 cannot starve I/O. */
	uint64_t limit = loop->seq;

	while (loop->nheap > 0) {
		struct fd_timer *t = loop->heap[0];

		if (t->deadline > loop->now || t->seq > limit)
			break;
		heap_remove(loop, t);
		t->cb(loop, t, t->arg);
		n++;
	}
	return n;
}

int fd_loop_run_once(struct fd_loop *loop, int max_wait_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	int timeout = max_wait_ms, n, handled;

	fd_loop_update_now(loop);
	handled = run_timers(loop);
	if (loop->stop)
		return handled;
	if (handled > 0) {
		timeout = 0;
	} else if (loop->nheap > 0) {
		int64_t d = loop->heap[0]->deadline - loop->now;

		if (d < 0)
			d = 0;
		if (d > INT32_MAX)
			d = INT32_MAX;
		if (timeout < 0 || d < timeout)
			timeout = (int)d;
	}
	n = epoll_wait(loop->epfd, evs, MAX_EVENTS, timeout);
	if (n < 0) {
		if (errno == EINTR)
			return handled;
		return -1;
	}
	fd_loop_update_now(loop);
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		struct watch *w;

		/* An earlier callback in this batch may have unwatched it. */
		if ((size_t)fd >= loop->nwatches || !loop->watches[fd].active)
			continue;
		w = &loop->watches[fd];
		w->cb(loop, fd, evs[i].events, w->arg);
		if (loop->stop)
			break;
	}
	return handled + n + run_timers(loop);
}

int fd_loop_run(struct fd_loop *loop)
{
	loop->stop = 0;
	while (!loop->stop)
		if (fd_loop_run_once(loop, -1) < 0)
			return -1;
	return 0;
}

void fd_loop_stop(struct fd_loop *loop)
{
	loop->stop = 1;
}
