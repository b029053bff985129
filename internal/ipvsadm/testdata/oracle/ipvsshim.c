/*
 * ipvsshim: an LD_PRELOAD stand-in for the kernel's IPVS sockopt interface,
 * so the real /usr/sbin/ipvsadm can run on a kernel without IPVS and serve
 * as the oracle for keepvs's ipvsadm front end (see oracle_test.go).
 *
 * ipvsadm first tries generic netlink; when the IPVS family is missing it
 * falls back to getsockopt/setsockopt on a raw socket, which this file
 * answers from a small text state file and logs every change request.
 *
 * Environment:
 *   IPVSSHIM_STATE  state file: lines "info", "timeout", "daemon", "svc", "dest"
 *   IPVSSHIM_LOG    file that set requests are appended to
 *   IPVSSHIM_ERRNO  if set, every set request fails with this errno
 *   IPVSSHIM_CONN   file served in place of /proc/net/ip_vs_conn
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/ip_vs.h>

#define MAXSVC 64
#define MAXDEST 64

struct dest {
	struct ip_vs_dest_entry e;
};

struct svc {
	struct ip_vs_service_entry e;
	struct dest dests[MAXDEST];
	int ndests;
};

static struct {
	int loaded;
	unsigned int version, size;
	struct ip_vs_timeout_user to;
	struct ip_vs_daemon_user dm[2];
	int ndm;
	struct svc svcs[MAXSVC];
	int nsvcs;
} st;

static void read_stats(const char *p, struct ip_vs_stats_user *s)
{
	unsigned long long v[10] = {0};
	sscanf(p, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
	       &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
	s->conns = v[0]; s->inpkts = v[1]; s->outpkts = v[2];
	s->inbytes = v[3]; s->outbytes = v[4]; s->cps = v[5];
	s->inpps = v[6]; s->outpps = v[7]; s->inbps = v[8]; s->outbps = v[9];
}

/* skip n whitespace-separated fields */
static const char *skip(const char *p, int n)
{
	while (n-- > 0) {
		while (*p == ' ' || *p == '\t') p++;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n') p++;
	}
	return p;
}

static void load(void)
{
	const char *path = getenv("IPVSSHIM_STATE");
	char line[1024];
	FILE *f;

	if (st.loaded)
		return;
	st.loaded = 1;
	st.version = 0x010201;
	st.size = 4096;
	st.to.tcp_timeout = 900;
	st.to.tcp_fin_timeout = 120;
	st.to.udp_timeout = 300;
	if (!path || !(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		char a[64], b[64], sched[32];
		unsigned int proto, port, fwmark, flags, timeout, cf, uth, lth, act, inact, pers;
		int w;
		if (!strncmp(line, "info ", 5)) {
			sscanf(line + 5, "%x %u", &st.version, &st.size);
		} else if (!strncmp(line, "timeout ", 8)) {
			sscanf(line + 8, "%d %d %d", &st.to.tcp_timeout,
			       &st.to.tcp_fin_timeout, &st.to.udp_timeout);
		} else if (!strncmp(line, "daemon ", 7) && st.ndm < 2) {
			struct ip_vs_daemon_user *d = &st.dm[st.ndm++];
			sscanf(line + 7, "%d %15s %d", &d->state, d->mcast_ifn, &d->syncid);
		} else if (!strncmp(line, "svc ", 4) && st.nsvcs < MAXSVC) {
			struct svc *s = &st.svcs[st.nsvcs++];
			struct in_addr in;
			if (sscanf(line + 4, "%u %63s %u %u %31s %x %u %63s", &proto, a,
				   &port, &fwmark, sched, &flags, &timeout, b) != 8)
				continue;
			s->e.protocol = proto;
			inet_aton(a, &in);
			s->e.addr = in.s_addr;
			s->e.port = htons(port);
			s->e.fwmark = fwmark;
			strncpy(s->e.sched_name, sched, IP_VS_SCHEDNAME_MAXLEN - 1);
			s->e.flags = flags;
			s->e.timeout = timeout;
			inet_aton(b, &in);
			s->e.netmask = in.s_addr;
			read_stats(skip(line + 4, 8), &s->e.stats);
		} else if (!strncmp(line, "dest ", 5) && st.nsvcs > 0) {
			struct svc *s = &st.svcs[st.nsvcs - 1];
			struct dest *d;
			struct in_addr in;
			if (s->ndests >= MAXDEST)
				continue;
			d = &s->dests[s->ndests++];
			if (sscanf(line + 5, "%63s %u %u %d %u %u %u %u %u", a, &port, &cf,
				   &w, &uth, &lth, &act, &inact, &pers) != 9)
				continue;
			inet_aton(a, &in);
			d->e.addr = in.s_addr;
			d->e.port = htons(port);
			d->e.conn_flags = cf;
			d->e.weight = w;
			d->e.u_threshold = uth;
			d->e.l_threshold = lth;
			d->e.activeconns = act;
			d->e.inactconns = inact;
			d->e.persistconns = pers;
			read_stats(skip(line + 5, 9), &d->e.stats);
			s->e.num_dests = s->ndests;
		}
	}
	fclose(f);
}

static struct svc *find(__u16 proto, __be32 addr, __be16 port, __u32 fwmark)
{
	int i;
	for (i = 0; i < st.nsvcs; i++) {
		struct ip_vs_service_entry *e = &st.svcs[i].e;
		if (fwmark) {
			if (e->fwmark == fwmark)
				return &st.svcs[i];
		} else if (!e->fwmark && e->protocol == proto && e->addr == addr &&
			   e->port == port) {
			return &st.svcs[i];
		}
	}
	return NULL;
}

int getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen)
{
	static int (*real)(int, int, int, void *, socklen_t *);
	if (!real)
		real = dlsym(RTLD_NEXT, "getsockopt");
	if (level != IPPROTO_IP || optname < IP_VS_SO_GET_VERSION ||
	    optname > IP_VS_SO_GET_MAX)
		return real(fd, level, optname, optval, optlen);
	load();
	switch (optname) {
	case IP_VS_SO_GET_INFO: {
		struct ip_vs_getinfo *gi = optval;
		gi->version = st.version;
		gi->size = st.size;
		gi->num_services = st.nsvcs;
		return 0;
	}
	case IP_VS_SO_GET_SERVICES: {
		struct ip_vs_get_services *gs = optval;
		int i;
		gs->num_services = st.nsvcs;
		for (i = 0; i < st.nsvcs; i++)
			gs->entrytable[i] = st.svcs[i].e;
		return 0;
	}
	case IP_VS_SO_GET_SERVICE: {
		struct ip_vs_service_entry *e = optval;
		struct svc *s = find(e->protocol, e->addr, e->port, e->fwmark);
		if (!s) {
			errno = ESRCH;
			return -1;
		}
		*e = s->e;
		return 0;
	}
	case IP_VS_SO_GET_DESTS: {
		struct ip_vs_get_dests *gd = optval;
		struct svc *s = find(gd->protocol, gd->addr, gd->port, gd->fwmark);
		int i;
		if (!s) {
			errno = ESRCH;
			return -1;
		}
		gd->num_dests = s->ndests;
		for (i = 0; i < s->ndests; i++)
			gd->entrytable[i] = s->dests[i].e;
		return 0;
	}
	case IP_VS_SO_GET_TIMEOUT:
		*(struct ip_vs_timeout_user *)optval = st.to;
		return 0;
	case IP_VS_SO_GET_DAEMON:
		memcpy(optval, st.dm, sizeof(st.dm));
		return 0;
	}
	errno = EINVAL;
	return -1;
}

static void log_svc(FILE *f, const struct ip_vs_service_user *s)
{
	struct in_addr a = { s->addr }, m = { s->netmask };
	char as[32];
	strcpy(as, inet_ntoa(a));
	fprintf(f, " proto=%u addr=%s port=%u fwmark=%u sched=%s flags=0x%x timeout=%u netmask=%s",
		s->protocol, as, ntohs(s->port), s->fwmark, s->sched_name,
		s->flags, s->timeout, inet_ntoa(m));
}

static void log_dest(FILE *f, const struct ip_vs_dest_user *d)
{
	struct in_addr a = { d->addr };
	fprintf(f, " dest=%s:%u fwd=%u weight=%d uth=%u lth=%u", inet_ntoa(a),
		ntohs(d->port), d->conn_flags, d->weight, d->u_threshold,
		d->l_threshold);
}

int setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen)
{
	static int (*real)(int, int, int, const void *, socklen_t);
	static const char *names[] = { "NONE", "INSERT", "ADD", "EDIT", "DEL",
		"FLUSH", "LIST", "ADDDEST", "DELDEST", "EDITDEST", "TIMEOUT",
		"STARTDAEMON", "STOPDAEMON", "RESTORE", "SAVE", "ZERO" };
	const char *path = getenv("IPVSSHIM_LOG");
	const char *fail = getenv("IPVSSHIM_ERRNO");
	int op = optname - IP_VS_BASE_CTL;
	FILE *f;

	if (!real)
		real = dlsym(RTLD_NEXT, "setsockopt");
	if (level != IPPROTO_IP || optname < IP_VS_SO_SET_NONE ||
	    optname > IP_VS_SO_SET_MAX)
		return real(fd, level, optname, optval, optlen);
	if (path && (f = fopen(path, "a"))) {
		fprintf(f, "%s", names[op]);
		switch (optname) {
		case IP_VS_SO_SET_ADD:
		case IP_VS_SO_SET_EDIT:
		case IP_VS_SO_SET_DEL:
		case IP_VS_SO_SET_ZERO:
			log_svc(f, optval);
			break;
		case IP_VS_SO_SET_ADDDEST:
		case IP_VS_SO_SET_DELDEST:
		case IP_VS_SO_SET_EDITDEST:
			log_svc(f, optval);
			log_dest(f, (const struct ip_vs_dest_user *)
				 ((const char *)optval + sizeof(struct ip_vs_service_user)));
			break;
		case IP_VS_SO_SET_TIMEOUT: {
			const struct ip_vs_timeout_user *t = optval;
			fprintf(f, " tcp=%d tcpfin=%d udp=%d", t->tcp_timeout,
				t->tcp_fin_timeout, t->udp_timeout);
			break;
		}
		case IP_VS_SO_SET_STARTDAEMON:
		case IP_VS_SO_SET_STOPDAEMON: {
			const struct ip_vs_daemon_user *d = optval;
			fprintf(f, " state=%d ifn=%s syncid=%d", d->state,
				d->mcast_ifn, d->syncid);
			break;
		}
		}
		fprintf(f, "\n");
		fclose(f);
	}
	if (fail && *fail) {
		errno = atoi(fail);
		return -1;
	}
	return 0;
}

int socket(int domain, int type, int protocol)
{
	static int (*real)(int, int, int);
	if (!real)
		real = dlsym(RTLD_NEXT, "socket");
	/* the fallback's raw socket needs CAP_NET_RAW; any socket will do */
	if (domain == AF_INET && type == SOCK_RAW && protocol == IPPROTO_RAW)
		return real(AF_INET, SOCK_DGRAM, 0);
	return real(domain, type, protocol);
}

FILE *fopen(const char *path, const char *mode)
{
	static FILE *(*real)(const char *, const char *);
	const char *conn = getenv("IPVSSHIM_CONN");
	if (!real)
		real = dlsym(RTLD_NEXT, "fopen");
	if (conn && !strcmp(path, "/proc/net/ip_vs_conn"))
		path = conn;
	return real(path, mode);
}
