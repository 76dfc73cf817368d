// SPDX-License-Identifier: GPL-2.0
/*
 * kvmclock: the paravirtual clock of KVM's public ABI, which Linux guests
 * trust for the TSC frequency (no PIT calibration) and as a clocksource.
 * CPUID 0x40000100 carries KVM's signature and 0x40000101 offers only
 * CLOCKSOURCE2 (the MSRs below) and CLOCKSOURCE_STABLE_BIT.
 *
 * The guest's clock is the VM's timeline: nanoseconds since the host TSC
 * read vm->arch.tsc_base, the same origin every vCPU's TSC starts from.
 * Each vCPU's page pairs a TSC value with the time at that TSC, and the
 * guest extrapolates with the host's TSC rate (mul/shift).  The time is
 * computed from the TSC with that same mul/shift, so a page never needs a
 * refresh while the TSC runs at one rate on every host CPU: only when the
 * guest enables it or moves its own TSC (WRMSR TSC).  Moving the vCPU to
 * another host CPU changes nothing then, and the stable bit says so; a
 * host whose TSCs disagree gets no stable bit, and Linux guests then keep
 * their clock monotonic across vCPUs themselves.
 *
 * State is per vCPU in vcpu->arch.msrs, under vcpu->mutex.
 */
#include <linux/ktime.h>
#include <linux/math64.h>
#include <asm/pvclock-abi.h>
#include <asm/tsc.h>

#include "x86.h"

#define PVCLOCK_ENABLE		BIT_ULL(0)

/*
 * tsc_khz as the guest's scaling pair: ns = ((tsc << shift) * mul) >> 32
 * (a right shift when shift < 0), with mul in [2^31, 2^32).
 */
static void pvclock_scale(u32 khz, u32 *mul, s8 *shift)
{
	u64 num = NSEC_PER_MSEC, den = khz ? khz : 1;
	int s = 0;

	while (num >= den) {		/* num/den < 1 */
		den <<= 1;
		s++;
	}
	while (num * 2 < den) {		/* num/den >= 1/2 */
		num <<= 1;
		s--;
	}
	*mul = div64_u64(num << 32, den);
	*shift = s;
}

static u64 pvclock_ns(u64 ticks, u32 mul, s8 shift)
{
	ticks = shift >= 0 ? ticks << shift : ticks >> -shift;
	return mul_u64_u32_shr(ticks, mul, 32);
}

static bool host_tsc_stable(void)
{
	return boot_cpu_has(X86_FEATURE_CONSTANT_TSC) &&
	       boot_cpu_has(X86_FEATURE_NONSTOP_TSC) && !check_tsc_unstable();
}

/* Write @len bytes at @gpa with the version protocol: odd while changing. */
static void pvclock_publish(struct kestrel_vcpu *vcpu, u64 gpa, u32 *version,
			    void *data, size_t len)
{
	struct kestrel_vm *vm = vcpu->vm;
	u32 v = *version;

	/* Bad addresses are the guest's problem: its clock stays unset. */
	v = (v + 1) | 1;
	if (kestrel_write_guest(vm, gpa, &v, sizeof(v)))
		return;
	/* The odd version before the data: the guest reads them in reverse. */
	smp_wmb();
	if (kestrel_write_guest(vm, gpa + sizeof(v), (u8 *)data + sizeof(v),
				len - sizeof(v)))
		return;
	/* The data before the even version. */
	smp_wmb();
	v++;
	kestrel_write_guest(vm, gpa, &v, sizeof(v));
	*version = v;
}

/* Refresh this vCPU's time page, if the guest enabled one. */
void kestrel_pvclock_update(struct kestrel_vcpu *vcpu)
{
	struct kestrel_msrs *m = &vcpu->arch.msrs;
	struct pvclock_vcpu_time_info pvti = { 0 };
	u64 host_tsc;

	if (!(m->kvm_system_time & PVCLOCK_ENABLE))
		return;
	pvclock_scale(tsc_khz, &pvti.tsc_to_system_mul, &pvti.tsc_shift);
	host_tsc = rdtsc();
	pvti.tsc_timestamp = host_tsc + READ_ONCE(m->tsc_offset);
	pvti.system_time = pvclock_ns(host_tsc - READ_ONCE(vcpu->vm->arch.tsc_base),
				      pvti.tsc_to_system_mul, pvti.tsc_shift);
	pvti.flags = host_tsc_stable() ? PVCLOCK_TSC_STABLE_BIT : 0;
	pvclock_publish(vcpu, m->kvm_system_time & ~PVCLOCK_ENABLE,
			&m->pvclock_version, &pvti, sizeof(pvti));
}

void kestrel_pvclock_reset(struct kestrel_vcpu *vcpu)
{
	vcpu->arch.msrs.kvm_system_time = 0;
	vcpu->arch.msrs.kvm_wall_clock = 0;
}

/* GPA, 4-byte aligned, of a pvclock_vcpu_time_info; bit 0 enables. */
int kestrel_pvclock_set_system_time(struct kestrel_vcpu *vcpu, u64 val)
{
	if (val & (BIT_ULL(1) | GENMASK_ULL(63, 52)))
		return -1;
	vcpu->arch.msrs.kvm_system_time = val;
	kestrel_pvclock_update(vcpu);
	return 0;
}

/*
 * GPA of a pvclock_wall_clock, written once per write: the real time at
 * which the VM's clock read 0, so that wall time = this + kvmclock.
 */
int kestrel_pvclock_set_wall_clock(struct kestrel_vcpu *vcpu, u64 val)
{
	struct kestrel_msrs *m = &vcpu->arch.msrs;
	struct pvclock_wall_clock wc = { 0 };
	u32 mul, rem;
	s8 shift;
	u64 ns;

	if (val & GENMASK_ULL(63, 52))
		return -1;
	m->kvm_wall_clock = val;
	pvclock_scale(tsc_khz, &mul, &shift);
	ns = ktime_get_real_ns() -
	     pvclock_ns(rdtsc() - READ_ONCE(vcpu->vm->arch.tsc_base), mul, shift);
	wc.sec = div_u64_rem(ns, NSEC_PER_SEC, &rem);
	wc.nsec = rem;
	pvclock_publish(vcpu, val, &m->wall_clock_version, &wc, sizeof(wc));
	return 0;
}
