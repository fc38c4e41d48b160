#!/usr/bin/env python3
# Write the seed corpus of fuzz_dbus (fuzz/fuzz_dbus.c describes the format): each method and
# property of org.bitmix.Daemon1 and org.bitmix.Model1 called once with sensible arguments.
import os
import struct
import sys

CALLS = ['SetGovernor', 'SetGovernorWithTunables', 'GetModel', 'LoadModel', 'UnloadModel', 'Reload',
         'SetBits', 'SetLimits', 'Hold', 'Release', 'GetAll', 'GetAllModel', 'Get', 'GetModelProp',
         'Set', 'Introspect', 'IntrospectPrefix', 'SetBitsNoModel']
WORDS = ['tiny', 'tiny2', 'performance', 'powersave', 'userspace', 'ondemand', 'conservative',
         'step_wise', 'power_allocator', 'min-bits', 'max-latency-ns', 'up_threshold',
         'sampling_down_factor', 'down_threshold', 'freq_step', 'states', 'trips', 'control_temp_c',
         'switch_on_temp_c', 'sustainable_power_w', 'k_po', 'k_pu', 'k_i', 'k_d', 'integral_cutoff_c',
         'dynamic_power_w', 'temp_c', 'hysteresis_c', 'org.bitmix.Daemon1', 'org.bitmix.Model1',
         'Governor', 'CurrentBits', 'Limits', 'Holds', 'Stats', 'CostTable', 'Models',
         'GovernorTunables']


def call(name, args=b''):
    return bytes([CALLS.index(name), 0]) + args


def w(word):
    return bytes([WORDS.index(word)])


def u32(v):
    return struct.pack('<I', v)


def u64(v):
    return struct.pack('<Q', v)


def f64(v):
    return struct.pack('<d', v)


seeds = {
    'governor': call('SetGovernor', w('ondemand')) + call('SetGovernor', w('userspace')) +
    call('SetGovernorWithTunables', w('ondemand') + bytes([2]) + w('up_threshold') + bytes([2]) + u32(80) +
         w('sampling_down_factor') + bytes([2]) + u32(3)) +
    call('SetGovernorWithTunables', w('power_allocator') + bytes([1]) + w('control_temp_c') + bytes([5]) + f64(75.0)) +
    call('SetGovernorWithTunables', w('step_wise') + bytes([1]) + w('trips') + bytes([8]) + bytes([1]) + f64(70.0) + f64(2.0)),
    'models': call('GetModel', w('tiny')) + call('LoadModel', bytes([0])) + call('GetModel', w('tiny2')) +
    call('UnloadModel', w('tiny2')) + call('LoadModel', bytes([4 * 2 + 0])) + call('UnloadModel', w('tiny')) +
    call('Reload'),
    'bits': call('SetGovernor', w('userspace')) +
    call('SetBits', bytes([3]) + bytes([8, 8, 4, 4, 2, 2])) + call('SetBits', bytes([2, 8, 8, 8, 8])) +
    call('SetLimits', bytes([3, 8, 1]) + w('tiny') + bytes([8])) +
    call('Hold', w('min-bits') + u64(4)) + call('Hold', w('max-latency-ns') + u64(1000000)) +
    call('Release', u32(1)) + call('SetBitsNoModel', bytes([0])),
    'properties': call('GetAll', w('org.bitmix.Daemon1')) + call('GetAllModel', w('org.bitmix.Model1')) +
    call('Get', w('org.bitmix.Daemon1') + w('Governor')) + call('GetModelProp', w('org.bitmix.Model1') + w('CostTable')) +
    call('GetModelProp', w('org.bitmix.Model1') + w('Stats')) + call('Set', w('org.bitmix.Daemon1') + w('Governor') + bytes([6]) + w('powersave')) +
    call('Introspect') + call('IntrospectPrefix'),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus', 'dbus')
os.makedirs(out, exist_ok=True)
for n, data in seeds.items():
    with open(os.path.join(out, n), 'wb') as f:
        f.write(data)
