"""The method registry: every entry is trained, evaluated and tested by the suite.

To add a method: write `methods/<name>.py` with a Config, PRESETS, a trainer and a `MethodSpec`,
then add it below. The registry-parametrized tests pick it up automatically.
"""

from methods import (
    cot,
    gumbel,
    maligan,
    mle,
    mle_es,
    pretrained,
    rankgan,
    rloo,
    seqgan,
    seqgan_baseline,
    wgan_gp,
)
from methods.base import MethodSpec

METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        pretrained.METHOD,
        mle.METHOD,
        mle_es.METHOD,
        seqgan.METHOD,
        seqgan.CONST_METHOD,
        seqgan.SHUFFLED_METHOD,
        seqgan.D10_METHOD,
        seqgan.ORACLE_METHOD,
        wgan_gp.METHOD,
        gumbel.METHOD,
        seqgan_baseline.METHOD,
        seqgan_baseline.NOISE_METHOD,
        seqgan_baseline.ORACLE_METHOD,
        maligan.METHOD,
        maligan.ORACLE_METHOD,
        rankgan.METHOD,
        cot.METHOD,
        rloo.METHOD,
        rloo.ORACLE_METHOD,
        rloo.KL_METHOD,
        rloo.KL_ORACLE_METHOD,
    )
}
