"""The reference answers, graded with ``pytest exercises --impl=reference``.

Spoiler: these are the answers. Where chatlab already has the code an exercise
rebuilds, the reference answer *is* chatlab's code, imported, so the kit and
its exercises cannot drift apart; the other answers live here.
"""
