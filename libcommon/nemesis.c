/* Nemeses. See nemesis.h. */
#include "nemesis.h"

#include <string.h>

uint64_t fd_prng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

uint64_t fd_prng_below(uint64_t *state, uint64_t n)
{
	/* Reject the top sliver that would favour small values. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;

	do
		x = fd_prng_next(state);
	while (x >= limit);
	return x % n;
}

void fd_prng_shuffle(uint64_t *state, int *a, int n)
{
	for (int i = n - 1; i > 0; i--) {
		int j = (int)fd_prng_below(state, (uint64_t)i + 1), t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

void fd_grudge_init(struct fd_grudge *g, int n)
{
	memset(g, 0, sizeof(*g));
	g->n = n < 0 ? 0 : n > FD_NEMESIS_MAX ? FD_NEMESIS_MAX : n;
}

void fd_grudge_sides(struct fd_grudge *g, int n, const int *side)
{
	fd_grudge_init(g, n);
	for (int i = 0; i < g->n; i++)
		for (int j = 0; j < g->n; j++)
			g->drop[i][j] = side[i] != side[j];
}

static int check_order(int n, const int *order, int min, struct fd_err *err)
{
	uint8_t seen[FD_NEMESIS_MAX] = {0};

	if (n < min || n > FD_NEMESIS_MAX)
		return fd_err_set(err, "needs %d to %d nodes, not %d", min,
				  FD_NEMESIS_MAX, n);
	for (int i = 0; i < n; i++) {
		if (order[i] < 0 || order[i] >= n || seen[order[i]])
			return fd_err_set(err, "the order is not a permutation");
		seen[order[i]] = 1;
	}
	return 0;
}

int fd_grudge_bridge(struct fd_grudge *g, int n, const int *order, struct fd_err *err)
{
	int side[FD_NEMESIS_MAX] = {0};

	if (check_order(n, order, 3, err) < 0)
		return -1;
	for (int k = 0; k < n; k++)
		side[order[k]] = k < n / 2;
	fd_grudge_sides(g, n, side);
	for (int j = 0; j < n; j++)
		g->drop[order[n / 2]][j] = g->drop[j][order[n / 2]] = 0;
	return 0;
}

int fd_grudge_ring(struct fd_grudge *g, int n, const int *order, struct fd_err *err)
{
	int m = n / 2 + 1;

	if (check_order(n, order, 3, err) < 0)
		return -1;
	fd_grudge_init(g, n);
	/* The window order[k..k+m) belongs to its middle node. */
	for (int k = 0; k < n; k++) {
		int c = order[(k + m / 2) % n];

		for (int j = 0; j < n; j++)
			g->drop[c][j] = 1;
		for (int w = 0; w < m; w++)
			g->drop[c][order[(k + w) % n]] = 0;
	}
	return 0;
}

int fd_grudge_symmetric(const struct fd_grudge *g, int i, int j)
{
	return g->drop[i][j] == g->drop[j][i];
}

int fd_grudge_heard(const struct fd_grudge *g, int i)
{
	int k = 0;

	for (int j = 0; j < g->n; j++)
		k += !g->drop[i][j];
	return k;
}

/* Chaos */

static const char *const names[FD_NEM_COUNT] = {
	"split", "isolate", "bridge", "ring", "halves", "slow", "flaky", "kill",
};

const char *fd_nemesis_name(int kind)
{
	return kind >= 0 && kind < FD_NEM_COUNT ? names[kind] : "?";
}

int fd_nemesis_parse(const char *s)
{
	for (int i = 0; i < FD_NEM_COUNT; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

int fd_nemesis_min_nodes(int kind)
{
	switch (kind) {
	case FD_NEM_SPLIT:
	case FD_NEM_ISOLATE:
	case FD_NEM_HALVES: return 2;
	case FD_NEM_BRIDGE:
	case FD_NEM_RING: return 3;
	default: return 1;
	}
}

int fd_chaos_draw(uint64_t *state, int n, unsigned mask,
		  struct fd_chaos_fault *f, struct fd_err *err)
{
	static const int64_t delays[] = {50, 100, 200, 500};
	static const int losses[] = {5, 10, 20, 30, 50};
	int kinds[FD_NEM_COUNT], nk = 0;

	if (n < 1 || n > FD_NEMESIS_MAX)
		return fd_err_set(err, "needs 1 to %d nodes, not %d",
				  FD_NEMESIS_MAX, n);
	for (int k = 0; k < FD_NEM_COUNT; k++)
		if ((mask & (1u << k)) && n >= fd_nemesis_min_nodes(k))
			kinds[nk++] = k;
	if (nk == 0)
		return fd_err_set(err, "no nemesis given fits %d node%s", n,
				  n == 1 ? "" : "s");
	memset(f, 0, sizeof(*f));
	f->kind = kinds[fd_prng_below(state, (uint64_t)nk)];
	f->n = n;
	for (int i = 0; i < n; i++)
		f->order[i] = i;
	fd_prng_shuffle(state, f->order, n);
	switch (f->kind) {
	case FD_NEM_SPLIT:
		f->cut = 1 + (int)fd_prng_below(state, (uint64_t)n - 1);
		break;
	case FD_NEM_HALVES: f->cut = n / 2; break;
	case FD_NEM_ISOLATE:
	case FD_NEM_KILL: f->node = f->order[0]; break;
	case FD_NEM_BRIDGE: f->node = f->order[n / 2]; break;
	case FD_NEM_SLOW:
		f->nsel = 1 + (int)fd_prng_below(state, (uint64_t)n);
		f->delay_ms = delays[fd_prng_below(state, 4)];
		f->jitter_ms = f->delay_ms / 4;
		break;
	case FD_NEM_FLAKY:
		f->nsel = 1 + (int)fd_prng_below(state, (uint64_t)n);
		f->loss_pct = losses[fd_prng_below(state, 5)];
		break;
	}
	return 0;
}

void fd_chaos_grudge(const struct fd_chaos_fault *f, struct fd_grudge *g)
{
	int side[FD_NEMESIS_MAX] = {0};

	switch (f->kind) {
	case FD_NEM_SPLIT:
	case FD_NEM_HALVES:
		for (int k = 0; k < f->n; k++)
			side[f->order[k]] = k < f->cut;
		fd_grudge_sides(g, f->n, side);
		break;
	case FD_NEM_ISOLATE:
		for (int i = 0; i < f->n; i++)
			side[i] = i == f->node;
		fd_grudge_sides(g, f->n, side);
		break;
	case FD_NEM_BRIDGE: fd_grudge_bridge(g, f->n, f->order, NULL); break;
	case FD_NEM_RING: fd_grudge_ring(g, f->n, f->order, NULL); break;
	default: fd_grudge_init(g, f->n);
	}
}
