document.getElementById("saml-post").submit();
