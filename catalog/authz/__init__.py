"""Authorization: one question, may PRINCIPAL do ACTION on SECURABLE?"""
