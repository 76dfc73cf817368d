// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel local APIC.
 *
 * One per vCPU once userspace asked for KESTREL_CREATE_IRQCHIP.  The
 * registers live in a page laid out as the xAPIC page is, so the xAPIC
 * (MMIO) and x2APIC (MSR) views share one decoder.  The vCPU thread owns
 * the registers (vcpu->mutex); every other source of interrupts (the
 * timer's hrtimer, MSIs from userspace threads, IPIs from other vCPUs)
 * only sets a bit in @pending or bumps @timer_fired and kicks the vCPU,
 * which folds them into IRR before its next entry.  So the only lock-free
 * state is those two, and nothing here takes a lock.
 *
 * INIT and start-up IPIs travel the same way, as bits in @events, and the
 * target's thread resets itself or starts at the SIPI's vector.
 *
 * Not modelled: NMI and SMI delivery, the error interrupt, CMCI, thermal
 * and performance LVTs (stored, never fire), EOI broadcast to an IOAPIC
 * (userspace's IOAPIC delivers edges).
 */
#include <linux/hrtimer.h>
#include <linux/slab.h>
#include <asm/apicdef.h>
#include <asm/msr-index.h>
#include <asm/tsc.h>

#include "lapic.h"

#define LAPIC_VERSION		0x14		/* integrated APIC */
#define LAPIC_MAX_LVT		5		/* timer .. error, no CMCI */
#define LAPIC_MIN_PERIOD_NS	200000		/* periodic: the host's due */

#define X2APIC_MSR_BASE		0x800
#define X2APIC_MSR_LAST		0x8ff
#define APIC_SELF_IPI_OFF	0x3f0

#define LVT_MASKED		BIT(16)
#define LVT_TIMER_MODE(v)	(((v) >> 17) & 3)
#define LVT_TIMER_ONESHOT	0
#define LVT_TIMER_PERIODIC	1
#define LVT_TIMER_DEADLINE	2

#define ICR_DM(v)		(((v) >> 8) & 7)
#define ICR_DM_FIXED		0
#define ICR_DM_LOWEST		1
#define ICR_DM_INIT		5
#define ICR_DM_SIPI		6
#define ICR_LEVEL_ASSERT	BIT(14)
#define ICR_TRIGGER_LEVEL	BIT(15)

/* lapic->events */
#define LAPIC_EV_INIT		0
#define LAPIC_EV_SIPI		1
#define ICR_LOGICAL		BIT(11)
#define ICR_SHORTHAND(v)	(((v) >> 18) & 3)

#define ESR_SEND_ILLEGAL	BIT(5)
#define ESR_RECV_ILLEGAL	BIT(6)

struct kestrel_lapic {
	struct kestrel_vcpu	*vcpu;

	/*
	 * The xAPIC register page (written under vcpu->mutex).  Senders
	 * match destinations against LDR and DFR without it (READ_ONCE:
	 * a reset's zeroes are the values it ends with, or match nothing);
	 * they take the ID from vcpu->id, never from here.
	 */
	u8			*regs;
	u64			tsc_deadline;	/* MSR value (vcpu->mutex) */
	u32			esr_pending;	/* errors since ESR's last write */

	/* Raised from any context; folded into IRR by the vCPU thread. */
	unsigned long		pending[256 / BITS_PER_LONG];
	atomic_t		timer_fired;	/* expiries not yet folded */
	unsigned long		events;		/* LAPIC_EV_* from other vCPUs */
	u8			sipi_vector;	/* written before LAPIC_EV_SIPI */

	/*
	 * The timer.  ns_per_count and period_ns are written by the vCPU
	 * thread only while the hrtimer is cancelled; the callback reads
	 * period_ns.
	 */
	struct hrtimer		timer;
	u32			ns_per_count;	/* bus period x divide */
	u64			period_ns;	/* periodic mode, else 0 */
};

static inline u32 lapic_get(struct kestrel_lapic *l, u32 off)
{
	return *(u32 *)(l->regs + off);
}

/* A register other vCPUs' senders read without the owner's lock. */
static inline u32 lapic_get_shared(struct kestrel_lapic *l, u32 off)
{
	return READ_ONCE(*(u32 *)(l->regs + off));
}

static inline void lapic_set(struct kestrel_lapic *l, u32 off, u32 val)
{
	*(u32 *)(l->regs + off) = val;
}

/* IRR, ISR and TMR: 256 bits as eight registers 16 bytes apart. */
static inline u32 *lapic_vec_word(struct kestrel_lapic *l, u32 base, u8 vec)
{
	return (u32 *)(l->regs + base + (vec / 32) * 0x10);
}

static int lapic_highest(struct kestrel_lapic *l, u32 base)
{
	int i;

	for (i = 7; i >= 0; i--) {
		u32 w = lapic_get(l, base + i * 0x10);

		if (w)
			return i * 32 + fls(w) - 1;
	}
	return -1;
}

/* Senders read the target's base too: READ_ONCE, never a torn mode. */
static bool lapic_x2apic(struct kestrel_vcpu *vcpu)
{
	return READ_ONCE(vcpu->arch.apic_base) & X2APIC_ENABLE;
}

static bool lapic_hw_enabled(struct kestrel_vcpu *vcpu)
{
	return READ_ONCE(vcpu->arch.apic_base) & MSR_IA32_APICBASE_ENABLE;
}

static bool lapic_sw_enabled(struct kestrel_lapic *l)
{
	return lapic_get(l, APIC_SPIV) & APIC_SPIV_APIC_ENABLED;
}

/*
 * The ID register is read-only and always the vCPU id, in both modes, so
 * a sender takes it from the vCPU rather than from a page its owner may
 * be resetting (an INIT clears the page while the SIPI that follows is
 * being routed to this very ID).
 */
static u32 lapic_id(struct kestrel_lapic *l)
{
	return l->vcpu->id;
}

static u32 lapic_ldr(struct kestrel_lapic *l)
{
	u32 id = l->vcpu->id;

	/* x2APIC: cluster in 31:16, one bit of 16 within it. */
	if (lapic_x2apic(l->vcpu))
		return (id >> 4) << 16 | BIT(id & 0xf);
	return lapic_get_shared(l, APIC_LDR);
}

/* The guest writes CR8 without exits (V_TPR): TPR follows it. */
static void lapic_sync_tpr(struct kestrel_lapic *l)
{
	u32 cr8 = kestrel_call(get_cr)(l->vcpu, 8);

	if ((lapic_get(l, APIC_TASKPRI) >> 4) != cr8)
		lapic_set(l, APIC_TASKPRI, cr8 << 4);
}

static u32 lapic_ppr(struct kestrel_lapic *l)
{
	u32 tpr = lapic_get(l, APIC_TASKPRI);
	int isr = lapic_highest(l, APIC_ISR);
	u32 isrv = isr < 0 ? 0 : isr & 0xf0;

	return (tpr & 0xf0) >= isrv ? tpr : isrv;
}

/* ---- interrupt sources --------------------------------------------------- */

/* Any context: the vCPU folds @vec into IRR before its next entry. */
static void lapic_raise(struct kestrel_lapic *l, u8 vec)
{
	set_bit(vec, l->pending);
	kestrel_vcpu_kick(l->vcpu);
}

static void lapic_set_irr(struct kestrel_lapic *l, u8 vec)
{
	if (vec < 16) {
		l->esr_pending |= ESR_RECV_ILLEGAL;
		return;
	}
	*lapic_vec_word(l, APIC_IRR, vec) |= BIT(vec % 32);
}

static void lapic_timer_expired(struct kestrel_lapic *l)
{
	u32 lvt = lapic_get(l, APIC_LVTT);

	if (LVT_TIMER_MODE(lvt) == LVT_TIMER_DEADLINE)
		l->tsc_deadline = 0;
	if (!(lvt & LVT_MASKED))
		lapic_set_irr(l, lvt & 0xff);
}

/* vCPU thread: take what other contexts raised. */
static void lapic_fold(struct kestrel_lapic *l)
{
	bool accept = lapic_hw_enabled(l->vcpu) && lapic_sw_enabled(l);
	int i;

	if (atomic_read(&l->timer_fired) && atomic_xchg(&l->timer_fired, 0))
		lapic_timer_expired(l);
	for (i = 0; i < ARRAY_SIZE(l->pending); i++) {
		unsigned long w;

		if (!READ_ONCE(l->pending[i]))
			continue;
		w = xchg(&l->pending[i], 0);
		/* A disabled APIC accepts no fixed interrupts: they are lost. */
		while (accept && w) {
			lapic_set_irr(l, i * BITS_PER_LONG + __ffs(w));
			w &= w - 1;
		}
	}
}

static bool lapic_match(struct kestrel_lapic *l, u32 dest, bool logical,
			bool x2apic_msg)
{
	u32 ldr, bcast = x2apic_msg ? 0xffffffff : 0xff;

	if (!lapic_hw_enabled(l->vcpu))
		return false;
	if (dest == bcast)
		return true;
	if (!logical)
		return dest == lapic_id(l);

	ldr = lapic_ldr(l);
	if (lapic_x2apic(l->vcpu))
		return (dest >> 16) == (ldr >> 16) && (dest & ldr & 0xffff);
	ldr >>= 24;
	dest &= 0xff;
	if ((lapic_get_shared(l, APIC_DFR) >> 28) == 0xf)	/* flat model */
		return dest & ldr;
	return (dest >> 4) == (ldr >> 4) && (dest & ldr & 0xf);
}

/* INIT or SIPI for @l's vCPU thread to act on. */
static void lapic_raise_event(struct kestrel_lapic *l, int ev, u8 vec)
{
	if (ev == LAPIC_EV_SIPI) {
		WRITE_ONCE(l->sipi_vector, vec);
		smp_wmb();	/* the vector before the bit */
	}
	set_bit(ev, &l->events);
	kestrel_vcpu_kick(l->vcpu);
}

/*
 * Deliver a fixed or lowest-priority interrupt (or, with @ev >= 0, an INIT
 * or SIPI) to the APICs @dest names; lowest priority goes to the first
 * match (no arbitration).  Returns how many took it.
 */
static int lapic_deliver(struct kestrel_vm *vm, struct kestrel_lapic *from,
			 int shorthand, u32 dest, bool logical, bool x2apic_msg,
			 bool lowest, u8 vec, int ev)
{
	unsigned int i;
	int n = 0;

	if (shorthand == APIC_DEST_SELF >> 18) {
		if (ev >= 0)
			lapic_raise_event(from, ev, vec);
		else
			lapic_raise(from, vec);
		return 1;
	}
	for (i = 0; i < KESTREL_MAX_VCPUS; i++) {
		/* Pairs with the release that publishes it (vcpu.c). */
		struct kestrel_vcpu *v = smp_load_acquire(&vm->vcpus[i]);
		struct kestrel_lapic *l = v ? v->arch.lapic : NULL;
		bool hit;

		if (!l)
			continue;
		if (shorthand == APIC_DEST_ALLINC >> 18)
			hit = true;
		else if (shorthand == APIC_DEST_ALLBUT >> 18)
			hit = l != from;
		else
			hit = lapic_match(l, dest, logical, x2apic_msg);
		if (!hit)
			continue;
		if (ev >= 0)
			lapic_raise_event(l, ev, vec);
		else
			lapic_raise(l, vec);
		n++;
		if (lowest)
			break;
	}
	return n;
}

static void lapic_send_ipi(struct kestrel_lapic *l, u32 lo, u32 dest)
{
	u32 dm = ICR_DM(lo);
	u8 vec = lo & 0xff;
	int ev = -1;

	switch (dm) {
	case ICR_DM_FIXED:
	case ICR_DM_LOWEST:
		if (vec < 16) {
			l->esr_pending |= ESR_SEND_ILLEGAL;
			return;
		}
		break;
	case ICR_DM_INIT:
		/* INIT level de-assert only synchronises arbitration IDs. */
		if ((lo & ICR_TRIGGER_LEVEL) && !(lo & ICR_LEVEL_ASSERT))
			return;
		ev = LAPIC_EV_INIT;
		break;
	case ICR_DM_SIPI:
		ev = LAPIC_EV_SIPI;
		break;
	default:
		return;		/* NMI, SMI: not modelled */
	}
	lapic_deliver(l->vcpu->vm, l, ICR_SHORTHAND(lo), dest,
		      lo & ICR_LOGICAL, lapic_x2apic(l->vcpu),
		      dm == ICR_DM_LOWEST, vec, ev);
}

int kestrel_lapic_deliver_msi(struct kestrel_vm *vm,
			      const struct kestrel_msi *msi)
{
	u32 dm = ICR_DM(msi->data);
	u8 vec = msi->data & 0xff;

	if (!READ_ONCE(vm->arch.irqchip))
		return -ENXIO;
	if (msi->flags || memchr_inv(msi->reserved, 0, sizeof(msi->reserved)))
		return -EINVAL;
	/* 0xfeeXXXXX: destination 19:12, RH 3, DM 2; no extended IDs. */
	if ((msi->address & ~0xff00cULL) != APIC_DEFAULT_PHYS_BASE ||
	    (msi->data & ~0xc7ffU))
		return -EINVAL;
	if ((dm != ICR_DM_FIXED && dm != ICR_DM_LOWEST) || vec < 16)
		return -EINVAL;
	return lapic_deliver(vm, NULL, 0, (msi->address >> 12) & 0xff,
			     msi->address & BIT(2), false,
			     dm == ICR_DM_LOWEST || (msi->address & BIT(3)),
			     vec, -1);
}

/* ---- the timer ------------------------------------------------------------ */

static enum hrtimer_restart lapic_timer_fn(struct hrtimer *t)
{
	struct kestrel_lapic *l = container_of(t, struct kestrel_lapic, timer);

	atomic_inc(&l->timer_fired);
	kestrel_vcpu_kick(l->vcpu);
	if (!l->period_ns)
		return HRTIMER_NORESTART;
	hrtimer_forward_now(t, ns_to_ktime(l->period_ns));
	return HRTIMER_RESTART;
}

static void lapic_timer_stop(struct kestrel_lapic *l)
{
	hrtimer_cancel(&l->timer);
	l->period_ns = 0;
}

/* TDCR: 0b000 divides by 2 ... 0b110 by 128, 0b111 by 1. */
static void lapic_set_divide(struct kestrel_lapic *l, u32 tdcr)
{
	u32 v = (tdcr & 3) | ((tdcr & 8) >> 1);

	lapic_set(l, APIC_TDCR, tdcr & 0xb);
	l->ns_per_count = (1U << ((v + 1) & 7)) * (u32)(1000000ULL /
						      KESTREL_APIC_BUS_KHZ);
}

/* One-shot or periodic: a TMICT write (re)starts the count. */
static void lapic_timer_start_count(struct kestrel_lapic *l)
{
	u32 count = lapic_get(l, APIC_TMICT);
	u64 ns;

	lapic_timer_stop(l);
	if (!count)
		return;
	ns = (u64)count * l->ns_per_count;
	if (LVT_TIMER_MODE(lapic_get(l, APIC_LVTT)) == LVT_TIMER_PERIODIC) {
		ns = max_t(u64, ns, LAPIC_MIN_PERIOD_NS);
		l->period_ns = ns;
	}
	hrtimer_start(&l->timer, ktime_add_ns(ktime_get(), ns),
		      HRTIMER_MODE_ABS_HARD);
}

/*
 * @ticks of a TSC at @khz in nanoseconds, exactly, for every 64-bit
 * @ticks and every rate; LAPIC_NEVER_NS where that is further than
 * LAPIC_NEVER_NS.  Whole milliseconds and the remainder apart, so that
 * no product or quotient overflows (one 64-bit multiply-divide traps
 * below 1 GHz, and its result overflows ktime below 2 GHz).  An unknown
 * rate (0) counts as 1 GHz.
 */
#define LAPIC_NEVER_NS		((u64)KTIME_MAX / 2)	/* 146 years */

u64 kestrel_lapic_tsc_to_ns(u64 ticks, u32 khz)
{
	u32 rem;
	u64 ms;

	if (!khz)
		khz = USEC_PER_SEC;
	ms = div_u64_rem(ticks, khz, &rem);
	if (ms >= LAPIC_NEVER_NS / NSEC_PER_MSEC)
		return LAPIC_NEVER_NS;
	return ms * NSEC_PER_MSEC + div_u64((u64)rem * NSEC_PER_MSEC, khz);
}

/*
 * A deadline LAPIC_NEVER_NS or more ahead is never reached while this
 * host runs: the timer stays off (the MSR keeps the value).  Anything
 * nearer fits ktime with room to spare, whatever ktime_get() says.
 */
static void lapic_timer_start_deadline(struct kestrel_lapic *l)
{
	u64 now = kestrel_x86_guest_tsc(l->vcpu), ns = 0;

	lapic_timer_stop(l);
	if (!l->tsc_deadline)
		return;
	if (l->tsc_deadline > now)
		ns = kestrel_lapic_tsc_to_ns(l->tsc_deadline - now, tsc_khz);
	if (ns >= LAPIC_NEVER_NS)
		return;
	hrtimer_start(&l->timer, ktime_add_ns(ktime_get(), ns),
		      HRTIMER_MODE_ABS_HARD);
}

/*
 * Load time: the conversion against the arithmetic it replaced, where
 * that one is exact, and its bounds at rates this host may not have.
 */
int kestrel_lapic_selfcheck(void)
{
	static const u32 rates[] = {
		1, 1000, 999999, 1000000, 1000001, 1999999, 2000000,
		3000000, U32_MAX,
	};
	static const u64 far[] = {
		U64_MAX, BIT_ULL(63), BIT_ULL(63) - 1, BIT_ULL(62), U64_MAX - 1,
	};
	int i, j;

	for (i = 0; i < ARRAY_SIZE(rates); i++) {
		u32 khz = rates[i];
		u64 small[] = { 0, 1, khz - 1, khz, (u64)khz * 1000 + 7,
				U32_MAX };

		for (j = 0; j < ARRAY_SIZE(small); j++)
			if (kestrel_lapic_tsc_to_ns(small[j], khz) !=
			    mul_u64_u32_div(small[j], USEC_PER_SEC, khz))
				goto bad;
		for (j = 0; j < ARRAY_SIZE(far); j++) {
			u64 ns = kestrel_lapic_tsc_to_ns(far[j], khz);

			/* Exact below LAPIC_NEVER_NS: 2^62 at 4.29 THz, say. */
			if (ns > LAPIC_NEVER_NS ||
			    (ns < LAPIC_NEVER_NS &&
			     div_u64(ns, NSEC_PER_MSEC) != div_u64(far[j], khz)))
				goto bad;
		}
	}
	return 0;
bad:
	kestrel_err("TSC-deadline arithmetic self-check failed at %u kHz, case %d\n",
		    rates[i], j);
	return -EINVAL;
}

static u32 lapic_current_count(struct kestrel_lapic *l)
{
	s64 rem;

	if (LVT_TIMER_MODE(lapic_get(l, APIC_LVTT)) == LVT_TIMER_DEADLINE ||
	    !hrtimer_active(&l->timer))
		return 0;
	rem = ktime_to_ns(hrtimer_get_remaining(&l->timer));
	if (rem <= 0)
		return 0;
	return div_u64(rem, l->ns_per_count);
}

/* ---- registers ------------------------------------------------------------ */

static const u32 lapic_lvts[] = {
	APIC_LVTT, APIC_LVTTHMR, APIC_LVTPC, APIC_LVT0, APIC_LVT1, APIC_LVTERR,
};

/* Writable bits of each LVT: vector, delivery mode, polarity, trigger, mask. */
static u32 lapic_lvt_mask(u32 off)
{
	switch (off) {
	case APIC_LVTT:
		return 0xff | LVT_MASKED | (3 << 17);
	case APIC_LVT0:
	case APIC_LVT1:
		return 0xff | (7 << 8) | BIT(13) | BIT(15) | LVT_MASKED;
	default:
		return 0xff | (7 << 8) | LVT_MASKED;
	}
}

static void lapic_eoi(struct kestrel_lapic *l)
{
	int vec = lapic_highest(l, APIC_ISR);

	if (vec >= 0)
		*lapic_vec_word(l, APIC_ISR, vec) &= ~BIT(vec % 32);
}

/* Read register @off (16-byte aligned).  -1: no such register (#GP). */
static int lapic_read(struct kestrel_lapic *l, u32 off, u32 *val)
{
	bool x2 = lapic_x2apic(l->vcpu);

	lapic_sync_tpr(l);
	switch (off) {
	case APIC_ID:
		*val = x2 ? l->vcpu->id : lapic_get(l, APIC_ID);
		return 0;
	case APIC_LDR:
		*val = lapic_ldr(l);
		return 0;
	case APIC_DFR:
		if (x2)
			return -1;
		*val = lapic_get(l, off);
		return 0;
	case APIC_PROCPRI:
		*val = lapic_ppr(l);
		return 0;
	case APIC_TMCCT:
		*val = lapic_current_count(l);
		return 0;
	case APIC_EOI:
	case APIC_SELF_IPI_OFF:
		if (x2)
			return -1;	/* write-only */
		*val = 0;
		return 0;
	case APIC_ICR2:
		if (x2)
			return -1;	/* part of the 64-bit ICR */
		fallthrough;
	case APIC_LVR:
	case APIC_TASKPRI:
	case APIC_SPIV:
	case APIC_ISR ... APIC_ISR + 0x70:
	case APIC_TMR ... APIC_TMR + 0x70:
	case APIC_IRR ... APIC_IRR + 0x70:
	case APIC_ESR:
	case APIC_ICR:
	case APIC_LVTT ... APIC_LVTERR:
	case APIC_TMICT:
	case APIC_TDCR:
		*val = lapic_get(l, off);
		return 0;
	default:
		if (x2)
			return -1;
		*val = 0;	/* reserved xAPIC offsets read as 0 */
		return 0;
	}
}

/* Write register @off.  -1: #GP (x2APIC reserved or read-only). */
static int lapic_write(struct kestrel_lapic *l, u32 off, u32 val, u32 dest)
{
	bool x2 = lapic_x2apic(l->vcpu);
	u32 old;
	int i;

	switch (off) {
	case APIC_TASKPRI:
		lapic_set(l, off, val & 0xff);
		kestrel_call(set_cr8)(l->vcpu, (val & 0xff) >> 4);
		return 0;
	case APIC_EOI:
		if (x2 && val)
			return -1;
		lapic_eoi(l);
		return 0;
	case APIC_LDR:
		if (x2)
			return -1;
		lapic_set(l, off, val & 0xff000000);
		return 0;
	case APIC_DFR:
		if (x2)
			return -1;
		lapic_set(l, off, val | 0x0fffffff);
		return 0;
	case APIC_SPIV:
		/* Vector, enable, focus; no EOI-broadcast suppression. */
		lapic_set(l, off, val & 0x3ff);
		if (!(val & APIC_SPIV_APIC_ENABLED))
			for (i = 0; i < ARRAY_SIZE(lapic_lvts); i++)
				lapic_set(l, lapic_lvts[i],
					  lapic_get(l, lapic_lvts[i]) | LVT_MASKED);
		return 0;
	case APIC_ESR:
		/* A write latches the errors seen since the last one. */
		if (x2 && val)
			return -1;
		lapic_set(l, off, l->esr_pending);
		l->esr_pending = 0;
		return 0;
	case APIC_ICR:
		lapic_set(l, off, val & ~APIC_ICR_BUSY);
		if (x2)
			lapic_set(l, APIC_ICR2, dest);
		lapic_send_ipi(l, val, x2 ? dest : lapic_get(l, APIC_ICR2) >> 24);
		return 0;
	case APIC_ICR2:
		if (x2)
			return -1;
		lapic_set(l, off, val & 0xff000000);
		return 0;
	case APIC_LVTT:
		old = lapic_get(l, off);
		val &= lapic_lvt_mask(off);
		if (!lapic_sw_enabled(l))
			val |= LVT_MASKED;
		lapic_set(l, off, val);
		/* A mode change disarms the timer. */
		if (LVT_TIMER_MODE(old) != LVT_TIMER_MODE(val)) {
			lapic_timer_stop(l);
			lapic_set(l, APIC_TMICT, 0);
			l->tsc_deadline = 0;
		}
		return 0;
	case APIC_LVTTHMR:
	case APIC_LVTPC:
	case APIC_LVT0:
	case APIC_LVT1:
	case APIC_LVTERR:
		val &= lapic_lvt_mask(off);
		if (!lapic_sw_enabled(l))
			val |= LVT_MASKED;
		lapic_set(l, off, val);
		return 0;
	case APIC_TMICT:
		if (LVT_TIMER_MODE(lapic_get(l, APIC_LVTT)) == LVT_TIMER_DEADLINE)
			return 0;
		lapic_set(l, off, val);
		lapic_timer_start_count(l);
		return 0;
	case APIC_TDCR:
		lapic_set_divide(l, val);
		return 0;
	case APIC_SELF_IPI_OFF:
		if (!x2)
			return 0;
		lapic_send_ipi(l, (val & 0xff) | APIC_DEST_SELF, 0);
		return 0;
	default:
		/* ID, version, PPR, ISR/TMR/IRR, current count: read-only. */
		return x2 ? -1 : 0;
	}
}

/* ---- the guest's views: xAPIC page, x2APIC MSRs, APIC base ---------------- */

int kestrel_lapic_mmio(struct kestrel_vcpu *vcpu, u64 gpa, int len,
		       bool write, u64 *val)
{
	struct kestrel_lapic *l = vcpu->arch.lapic;
	u64 base = vcpu->arch.apic_base & GENMASK_ULL(51, 12);
	u32 off = gpa - base, reg;

	if (!l || !lapic_hw_enabled(vcpu) || lapic_x2apic(vcpu) ||
	    gpa < base || gpa >= base + PAGE_SIZE)
		return -ENODEV;

	/* Registers are 32 bits at 16-byte steps; other accesses are odd. */
	if (write) {
		if (len == 4 && !(off & 0xf))
			lapic_write(l, off, *val, 0);
		return 0;
	}
	*val = 0;
	if ((off & 0xf) + len <= 4 && !lapic_read(l, off & ~0xfU, &reg))
		*val = (reg >> ((off & 3) * 8)) &
		       (len == 4 ? 0xffffffffU : (1U << (len * 8)) - 1);
	return 0;
}

static int lapic_set_base(struct kestrel_lapic *l, u64 val)
{
	struct kestrel_vcpu *vcpu = l->vcpu;
	u64 old = vcpu->arch.apic_base;
	u64 allowed = MSR_IA32_APICBASE_BSP | X2APIC_ENABLE |
		      MSR_IA32_APICBASE_ENABLE |
		      (GENMASK_ULL(kestrel_host_phys_bits - 1, 12));
	bool en = val & MSR_IA32_APICBASE_ENABLE, x2 = val & X2APIC_ENABLE;

	if (val & ~allowed)
		return -1;
	/*
	 * x2APIC needs EN, and is entered from xAPIC mode only; leaving it
	 * goes through disabled first.
	 */
	if ((x2 && !en) ||
	    (x2 && !(old & MSR_IA32_APICBASE_ENABLE)) ||
	    ((old & X2APIC_ENABLE) && (old & MSR_IA32_APICBASE_ENABLE) &&
	     en && !x2))
		return -1;
	/* BSP is the hardware's to say. */
	val = (val & ~MSR_IA32_APICBASE_BSP) | (old & MSR_IA32_APICBASE_BSP);
	WRITE_ONCE(vcpu->arch.apic_base, val);

	if (!en && (old & MSR_IA32_APICBASE_ENABLE)) {
		/* Hardware disable: as after RESET, but keep the base. */
		kestrel_lapic_reset(vcpu);
		WRITE_ONCE(vcpu->arch.apic_base, val);
	}
	return 0;
}

int kestrel_lapic_rdmsr(struct kestrel_vcpu *vcpu, u32 msr, u64 *val)
{
	struct kestrel_lapic *l = vcpu->arch.lapic;
	u32 lo;

	if (!l)
		return -ENODEV;
	if (msr == MSR_IA32_APICBASE) {
		*val = vcpu->arch.apic_base;
		return 0;
	}
	if (msr == MSR_IA32_TSC_DEADLINE) {
		*val = LVT_TIMER_MODE(lapic_get(l, APIC_LVTT)) ==
		       LVT_TIMER_DEADLINE ? l->tsc_deadline : 0;
		return 0;
	}
	if (msr < X2APIC_MSR_BASE || msr > X2APIC_MSR_LAST)
		return -ENODEV;
	if (!lapic_x2apic(vcpu) || !lapic_hw_enabled(vcpu))
		return -1;
	if (lapic_read(l, (msr - X2APIC_MSR_BASE) << 4, &lo))
		return -1;
	*val = lo;
	if (msr == X2APIC_MSR_BASE + (APIC_ICR >> 4))
		*val |= (u64)lapic_get(l, APIC_ICR2) << 32;
	return 0;
}

int kestrel_lapic_wrmsr(struct kestrel_vcpu *vcpu, u32 msr, u64 val)
{
	struct kestrel_lapic *l = vcpu->arch.lapic;
	u32 off;

	if (!l)
		return -ENODEV;
	if (msr == MSR_IA32_APICBASE)
		return lapic_set_base(l, val);
	if (msr == MSR_IA32_TSC_DEADLINE) {
		/* Ignored outside TSC-deadline mode, as on hardware. */
		if (LVT_TIMER_MODE(lapic_get(l, APIC_LVTT)) ==
		    LVT_TIMER_DEADLINE) {
			l->tsc_deadline = val;
			lapic_timer_start_deadline(l);
		}
		return 0;
	}
	if (msr < X2APIC_MSR_BASE || msr > X2APIC_MSR_LAST)
		return -ENODEV;
	if (!lapic_x2apic(vcpu) || !lapic_hw_enabled(vcpu))
		return -1;
	off = (msr - X2APIC_MSR_BASE) << 4;
	/* Only the ICR is 64 bits wide; elsewhere 63:32 are reserved. */
	if (off != APIC_ICR && (val >> 32))
		return -1;
	return lapic_write(l, off, val, val >> 32);
}

/* ---- the run loop ----------------------------------------------------------- */

/* The vector to inject next, ignoring IF: highest IRR above PPR. */
static int lapic_deliverable(struct kestrel_lapic *l, int *masked_prio)
{
	int irr = lapic_highest(l, APIC_IRR), isr;

	*masked_prio = -1;
	if (irr < 0)
		return -1;
	if ((irr & 0xf0) > (lapic_ppr(l) & 0xf0))
		return irr;
	/* Held back by TPR alone: worth a window for when CR8 drops. */
	isr = lapic_highest(l, APIC_ISR);
	if (isr < 0 || (irr & 0xf0) > (isr & 0xf0))
		*masked_prio = irr >> 4;
	return -1;
}

void kestrel_lapic_prepare_entry(struct kestrel_vcpu *vcpu)
{
	struct kestrel_lapic *l = vcpu->arch.lapic;
	int vec, masked;

	if (!l)
		return;
	lapic_sync_tpr(l);
	lapic_fold(l);
	vec = lapic_deliverable(l, &masked);
	if (vec < 0) {
		kestrel_call(set_irq_window)(vcpu, masked);
		return;
	}
	if (vcpu->arch.exception.pending || !kestrel_call(interrupt_allowed)(vcpu)) {
		kestrel_call(set_irq_window)(vcpu, vec >> 4);
		return;
	}
	kestrel_x86_before_inject(vcpu);
	*lapic_vec_word(l, APIC_IRR, vec) &= ~BIT(vec % 32);
	*lapic_vec_word(l, APIC_ISR, vec) |= BIT(vec % 32);
	kestrel_call(set_irq_window)(vcpu, -1);
	kestrel_call(inject_irq)(vcpu, vec);
	kestrel_stat_inc(vcpu, injected);
}

/* Any context: has something arrived that the vCPU has not folded? */
bool kestrel_lapic_has_new_irq(struct kestrel_vcpu *vcpu)
{
	struct kestrel_lapic *l = vcpu->arch.lapic;
	int i;

	if (!l)
		return false;
	if (atomic_read(&l->timer_fired) || READ_ONCE(l->events))
		return true;
	for (i = 0; i < ARRAY_SIZE(l->pending); i++)
		if (READ_ONCE(l->pending[i]))
			return true;
	return false;
}

/* vCPU thread: act on INIT and SIPI others sent. */
void kestrel_lapic_take_events(struct kestrel_vcpu *vcpu)
{
	struct kestrel_lapic *l = vcpu->arch.lapic;
	u8 vec;

	if (!l || !READ_ONCE(l->events))
		return;
	if (test_and_clear_bit(LAPIC_EV_INIT, &l->events))
		kestrel_x86_init_event(vcpu);
	if (test_and_clear_bit(LAPIC_EV_SIPI, &l->events)) {
		smp_rmb();	/* the bit before the vector */
		vec = READ_ONCE(l->sipi_vector);
		/* A SIPI outside wait-for-SIPI is dropped, as on hardware. */
		if (vcpu->arch.mp_state == KESTREL_MP_STATE_WAIT_SIPI)
			kestrel_x86_sipi(vcpu, vec);
	}
}

/* vCPU thread, halted: would an interrupt be taken now? */
bool kestrel_lapic_can_wake(struct kestrel_vcpu *vcpu)
{
	struct kestrel_lapic *l = vcpu->arch.lapic;
	int masked;

	if (!l)
		return true;
	lapic_sync_tpr(l);
	lapic_fold(l);
	return lapic_deliverable(l, &masked) >= 0 &&
	       (vcpu->arch.rflags & X86_EFLAGS_IF);
}

/* ---- lifetime ---------------------------------------------------------------- */

void kestrel_lapic_reset(struct kestrel_vcpu *vcpu)
{
	struct kestrel_lapic *l = vcpu->arch.lapic;
	int i;

	if (!l)
		return;
	lapic_timer_stop(l);
	memset(l->regs, 0, PAGE_SIZE);
	memset(l->pending, 0, sizeof(l->pending));
	atomic_set(&l->timer_fired, 0);
	l->tsc_deadline = 0;
	l->esr_pending = 0;
	lapic_set(l, APIC_ID, vcpu->id << 24);
	lapic_set(l, APIC_LVR, LAPIC_VERSION | LAPIC_MAX_LVT << 16);
	lapic_set(l, APIC_DFR, 0xffffffff);
	lapic_set(l, APIC_SPIV, 0xff);
	for (i = 0; i < ARRAY_SIZE(lapic_lvts); i++)
		lapic_set(l, lapic_lvts[i], LVT_MASKED);
	lapic_set_divide(l, 0);
	kestrel_call(set_cr8)(vcpu, 0);
}

int kestrel_lapic_create(struct kestrel_vcpu *vcpu)
{
	struct kestrel_lapic *l;

	l = kzalloc(sizeof(*l), GFP_KERNEL_ACCOUNT);
	if (!l)
		return -ENOMEM;
	l->regs = (u8 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!l->regs) {
		kfree(l);
		return -ENOMEM;
	}
	l->vcpu = vcpu;
	hrtimer_init(&l->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS_HARD);
	l->timer.function = lapic_timer_fn;
	vcpu->arch.lapic = l;
	return 0;
}

void kestrel_lapic_free(struct kestrel_vcpu *vcpu)
{
	struct kestrel_lapic *l = vcpu->arch.lapic;

	if (!l)
		return;
	hrtimer_cancel(&l->timer);
	free_page((unsigned long)l->regs);
	kfree(l);
	vcpu->arch.lapic = NULL;
}
