"""The zoo judges' verdict protocol (the text a judge reads before it says ``y`` or ``n``).

``check {prompt}`` -> (``"worked"`` protocol: the judge works the problem itself, greedily, up to ``;``;
``"check"`` protocol: nothing, ``;`` at once) -> the proposed final answer (extracted as the verifier does)
is appended with ``>`` -> the judge says ``y`` (correct) or ``n`` (wrong). The ``chain3`` judge works before
it sees the proposal, so it cannot copy the proposal's number into its working; it is a second solver.
The ``chain5`` judge compares without working: a checker, which is what a judge should be.
"""

JUDGE_CHECK_PREFIX = "check "
JUDGE_WORK_END = ";"
JUDGE_ANSWER_END = ">"
