/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The in-kernel local APIC (KESTREL_CREATE_IRQCHIP): one per vCPU, reached
 * through the xAPIC page, the x2APIC MSRs and MSI messages from userspace.
 * Everything else about interrupts (IOAPIC, PIC, devices) is userspace's.
 */
#ifndef KESTREL_LAPIC_H
#define KESTREL_LAPIC_H

#include "x86.h"

struct kestrel_msi;

int kestrel_lapic_create(struct kestrel_vcpu *vcpu);
/* TSC ticks at @khz to ns, saturating; and its load-time self-check. */
u64 kestrel_lapic_tsc_to_ns(u64 ticks, u32 khz);
int kestrel_lapic_selfcheck(void);
void kestrel_lapic_free(struct kestrel_vcpu *vcpu);
void kestrel_lapic_reset(struct kestrel_vcpu *vcpu);

/*
 * MSR_IA32_APICBASE, MSR_IA32_TSC_DEADLINE and the x2APIC range
 * 0x800-0x8ff.  0: done; -1: raise #GP; -ENODEV: not a local APIC MSR,
 * or the VM has no in-kernel APIC.
 */
int kestrel_lapic_rdmsr(struct kestrel_vcpu *vcpu, u32 msr, u64 *val);
int kestrel_lapic_wrmsr(struct kestrel_vcpu *vcpu, u32 msr, u64 val);

/*
 * A guest access to the xAPIC page.  0: done (*val read or written);
 * -ENODEV: @gpa is not this vCPU's enabled xAPIC page, so userspace's.
 */
int kestrel_lapic_mmio(struct kestrel_vcpu *vcpu, u64 gpa, int len,
		       bool write, u64 *val);

/* KESTREL_SIGNAL_MSI: how many local APICs took the message, or -errno. */
int kestrel_lapic_deliver_msi(struct kestrel_vm *vm,
			      const struct kestrel_msi *msi);

/* Run loop: inject or ask for a window before entry; HLT's wake-up test. */
void kestrel_lapic_prepare_entry(struct kestrel_vcpu *vcpu);
bool kestrel_lapic_has_new_irq(struct kestrel_vcpu *vcpu);
bool kestrel_lapic_can_wake(struct kestrel_vcpu *vcpu);
void kestrel_lapic_take_events(struct kestrel_vcpu *vcpu);

#endif
