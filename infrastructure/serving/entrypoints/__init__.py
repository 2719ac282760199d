"""Modules that ``bentoml serve`` / ``bentoml build`` import: each builds one service.

Importing one resolves the served model from the BentoML store (that is how BentoML
records model dependencies), so nothing else imports these modules.
"""
